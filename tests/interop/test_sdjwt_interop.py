"""Our SD-JWT credentials and status lists, checked by the independent npm @sd-jwt 0.19.0 code.

The Node scripts next to this file run in a subprocess. Their packages come from
package-lock.json. Install them with ``npm ci --prefix tests/interop``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jwcrypto.jwk import JWK

from appliance.credentials import (
    encode_status_list,
    generate_holder_key,
    issue_sd_jwt,
    present,
    sign_status_list_token,
    verify_presentation,
)

INTEROP_DIR = Path(__file__).parent
VECTORS_FILE = INTEROP_DIR.parent / "credentials" / "vectors" / "status_list_draft.json"
NOW = 1_900_000_000
ISSUER = "https://appliance.example/o/acme/breakglass"
KID = "breakglass-interop"
AUD = "https://bastion.example"
NONCE = "interop-nonce-1"
STATUS_URI = "https://appliance.example/o/acme/breakglass/status/1"
STATUS_IDX = 7
NODE_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def node() -> str:
    """Return the path of node, and fail (never skip) when node or the npm packages are missing."""
    executable = shutil.which("node")
    if executable is None:
        pytest.fail("node is not on PATH: install Node.js 20 to run the interop tests")
    for package in ("core", "sd-jwt-vc", "crypto-nodejs", "jwt-status-list"):
        if not (INTEROP_DIR / "node_modules" / "@sd-jwt" / package).is_dir():
            pytest.fail(
                f"npm package @sd-jwt/{package} is not installed in {INTEROP_DIR / 'node_modules'}:"
                " run `npm ci --prefix tests/interop` first"
            )
    return executable


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def run_node(node: str, script: str, payload: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(INTEROP_DIR / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        cwd=INTEROP_DIR,
        check=False,
    )


def node_verify(
    node: str, presentation: str, issuer_key: JWK, status_list_token: str | None, **overrides: Any
) -> subprocess.CompletedProcess[str]:
    payload: dict[str, Any] = {
        "presentation": presentation,
        "issuer_jwk": issuer_key.export_public(as_dict=True),
        "aud": AUD,
        "nonce": NONCE,
        "now": NOW + 10,
        "status_list_token": status_list_token,
    }
    payload.update(overrides)
    return run_node(node, "verify.mjs", payload)


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def issuer_key(request: pytest.FixtureRequest) -> JWK:
    if request.param == "ES256":
        return JWK.generate(kty="EC", crv="P-256", kid=KID)
    return JWK.generate(kty="OKP", crv="Ed25519", kid=KID)


@pytest.fixture(scope="module")
def holder_key() -> JWK:
    return generate_holder_key()


@pytest.fixture(scope="module")
def credential(issuer_key: JWK, holder_key: JWK) -> str:
    return issue_sd_jwt(
        signing_key=issuer_key,
        kid=KID,
        issuer=ISSUER,
        subject="alice",
        holder_jwk=holder_key.export_public(as_dict=True),
        iat=NOW,
        nbf=NOW,
        exp=NOW + 900,
        disclosable={
            "role": "db-admin",
            "resource": "postgres://orders",
            "incident": "INC-4711",
            "justification": "orders DB primary is down",
            "approvers": ["bob", "carol"],
        },
        claims={"status": {"status_list": {"idx": STATUS_IDX, "uri": STATUS_URI}}},
        vct="https://appliance.example/credentials/breakglass",
    )


@pytest.fixture(scope="module")
def status_token(issuer_key: JWK) -> Callable[[int], str]:
    """Sign a 1-bit status list token whose entry STATUS_IDX has the given value."""

    def sign(value: int) -> str:
        values = [0] * 64
        values[STATUS_IDX] = value
        return sign_status_list_token(
            signing_key=issuer_key,
            kid=KID,
            uri=STATUS_URI,
            values=values,
            bits=1,
            iat=NOW,
            exp=NOW + 3600,
            ttl=600,
            issuer=ISSUER,
        )

    return sign


def our_claims(presentation: str, issuer_key: JWK) -> dict[str, Any]:
    verified = verify_presentation(
        presentation,
        issuer_jwks={"keys": [issuer_key.export_public(as_dict=True)]},
        expected_issuer=ISSUER,
        expected_aud=AUD,
        expected_nonce=NONCE,
        now=NOW + 10,
    )
    return verified.claims


def test_node_verifier_accepts_full_presentation(
    node: str, credential: str, holder_key: JWK, issuer_key: JWK, status_token: Callable[[int], str]
) -> None:
    presentation = present(credential, holder_key, aud=AUD, nonce=NONCE, now=NOW + 5)

    result = node_verify(node, presentation, issuer_key, status_token(0))

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["payload"] == our_claims(presentation, issuer_key)
    assert output["payload"]["justification"] == "orders DB primary is down"
    assert output["header"]["typ"] == "dc+sd-jwt"
    assert output["kb"]["payload"]["aud"] == AUD


def test_node_verifier_accepts_partial_presentation(
    node: str, credential: str, holder_key: JWK, issuer_key: JWK, status_token: Callable[[int], str]
) -> None:
    presentation = present(
        credential, holder_key, aud=AUD, nonce=NONCE, now=NOW + 5, disclose=["role", "approvers"]
    )

    result = node_verify(node, presentation, issuer_key, status_token(0))

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)["payload"]
    assert payload == our_claims(presentation, issuer_key)
    assert payload["approvers"] == ["bob", "carol"]
    assert "incident" not in payload


def _tamper_payload(presentation: str) -> str:
    issuer_jwt, rest = presentation.split("~", 1)
    header, body, signature = issuer_jwt.split(".")
    claims = json.loads(b64url_decode(body))
    claims["sub"] = "mallory"
    return f"{header}.{b64url_encode(json.dumps(claims).encode())}.{signature}~{rest}"


def _tamper_disclosure(presentation: str) -> str:
    issuer_jwt, first, rest = presentation.split("~", 2)
    salt, name, _ = json.loads(b64url_decode(first))
    forged = b64url_encode(json.dumps([salt, name, "superuser"]).encode())
    return f"{issuer_jwt}~{forged}~{rest}"


def _drop_kb_jwt(presentation: str) -> str:
    return presentation.rsplit("~", 1)[0] + "~"


@pytest.mark.parametrize(
    ("tamper", "overrides"),
    [
        pytest.param(_tamper_payload, {}, id="issuer-payload"),
        pytest.param(_tamper_disclosure, {}, id="disclosure"),
        pytest.param(_drop_kb_jwt, {}, id="no-kb-jwt"),
        pytest.param(None, {"nonce": "other-nonce"}, id="nonce"),
        pytest.param(None, {"aud": "https://other-rp.example"}, id="aud"),
        pytest.param(None, {"now": NOW + 900 + 31}, id="expired"),
    ],
)
def test_node_verifier_rejects_tampered_presentation(
    node: str,
    credential: str,
    holder_key: JWK,
    issuer_key: JWK,
    status_token: Callable[[int], str],
    tamper: Callable[[str], str] | None,
    overrides: dict[str, Any],
) -> None:
    presentation = present(credential, holder_key, aud=AUD, nonce=NONCE, now=NOW + 5)
    if tamper is not None:
        presentation = tamper(presentation)

    result = node_verify(node, presentation, issuer_key, status_token(0), **overrides)

    assert result.returncode != 0, result.stdout
    assert "verification failed" in result.stderr


def test_node_verifier_rejects_revoked_credential(
    node: str, credential: str, holder_key: JWK, issuer_key: JWK, status_token: Callable[[int], str]
) -> None:
    presentation = present(credential, holder_key, aud=AUD, nonce=NONCE, now=NOW + 5)

    result = node_verify(node, presentation, issuer_key, status_token(1))

    assert result.returncode != 0, result.stdout
    assert "status" in result.stderr.lower()


def test_node_decodes_status_list_token(
    node: str, issuer_key: JWK, status_token: Callable[[int], str]
) -> None:
    result = run_node(
        node,
        "status_list.mjs",
        {
            "token": status_token(1),
            "issuer_jwk": issuer_key.export_public(as_dict=True),
            "uri": STATUS_URI,
            "now": NOW + 10,
            "indexes": [0, STATUS_IDX - 1, STATUS_IDX, STATUS_IDX + 1, 63],
        },
    )

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["sub"] == STATUS_URI
    assert output["bits"] == 1
    assert output["statuses"] == [0, 0, 1, 0, 0]


def test_node_rejects_status_list_token_of_other_key(
    node: str, status_token: Callable[[int], str]
) -> None:
    impostor = JWK.generate(kty="EC", crv="P-256", kid=KID)
    result = run_node(
        node,
        "status_list.mjs",
        {
            "token": status_token(0),
            "issuer_jwk": impostor.export_public(as_dict=True),
            "uri": STATUS_URI,
            "now": NOW + 10,
            "indexes": [0],
        },
    )

    assert result.returncode != 0, result.stdout


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_node_decodes_our_draft_vector_encoding(node: str, bits: int) -> None:
    vectors = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
    vector = next(v for v in vectors if v["bits"] == bits and "set" in v)
    values = [0] * vector["size"]
    for idx, value in vector["set"].items():
        values[int(idx)] = value
    indexes = [*sorted(int(idx) for idx in vector["set"]), 1, 2, vector["size"] - 1]

    result = run_node(
        node,
        "status_list.mjs",
        {
            "lst": encode_status_list(values, bits),
            "bits": bits,
            "indexes": indexes,
        },
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statuses"] == [values[idx] for idx in indexes]
