"""present and the credential file helpers of the holder side."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jwcrypto.jwk import JWK

from appliance.credentials import (
    CredentialFileError,
    generate_holder_key,
    present,
    read_credential_file,
    write_credential_file,
)
from appliance.credentials.jws import b64url_decode
from tests.credentials.sdjwt_forge import AUD, ISSUER, NONCE, NOW, digest_of, public_dict


def kb_parts(presentation: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = presentation.rsplit("~", 1)[1].split(".")
    return (
        json.loads(b64url_decode(header, label="KB header")),
        json.loads(b64url_decode(payload, label="KB payload")),
    )


def disclosed_names(presentation: str) -> set[str]:
    encoded = presentation.split("~")[1:-1]
    return {json.loads(b64url_decode(item, label="disclosure"))[1] for item in encoded}


def test_generated_holder_key_is_private_p256() -> None:
    key = generate_holder_key()

    assert key.has_private
    assert (key.get("kty"), key.get("crv")) == ("EC", "P-256")


def test_kb_jwt_binds_audience_nonce_time_and_hash(
    issue: Callable[..., str], holder_key: JWK
) -> None:
    presentation = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW + 5)

    header, payload = kb_parts(presentation)
    assert header == {"alg": "ES256", "typ": "kb+jwt"}
    assert payload["aud"] == AUD
    assert payload["nonce"] == NONCE
    assert payload["iat"] == NOW + 5
    assert payload["sd_hash"] == digest_of(presentation.rsplit("~", 1)[0] + "~")


def test_discloses_everything_by_default(issue: Callable[..., str], holder_key: JWK) -> None:
    presentation = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW)

    assert disclosed_names(presentation) == {"role", "resource", "incident", "approvers"}


def test_discloses_only_requested_claims(issue: Callable[..., str], holder_key: JWK) -> None:
    presentation = present(
        issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW, disclose=["role", "incident"]
    )

    assert disclosed_names(presentation) == {"role", "incident"}


def test_discloses_nothing_for_empty_selection(issue: Callable[..., str], holder_key: JWK) -> None:
    presentation = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW, disclose=())

    issuer_jwt, kb_jwt = presentation.split("~")
    assert issuer_jwt.count(".") == 2
    assert kb_jwt.count(".") == 2


def test_present_rejects_unknown_claim_name(issue: Callable[..., str], holder_key: JWK) -> None:
    with pytest.raises(ValueError, match="justification"):
        present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW, disclose=["justification"])


def test_present_rejects_single_string_selection(
    issue: Callable[..., str], holder_key: JWK
) -> None:
    with pytest.raises(TypeError, match="iterable"):
        present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW, disclose="role")


def test_present_rejects_foreign_holder_key(issue: Callable[..., str]) -> None:
    with pytest.raises(ValueError, match=r"cnf\.jwk"):
        present(issue(), generate_holder_key(), aud=AUD, nonce=NONCE, now=NOW)


def test_present_rejects_public_holder_key(issue: Callable[..., str], holder_key: JWK) -> None:
    public_only = JWK(**public_dict(holder_key))

    with pytest.raises(ValueError, match="private"):
        present(issue(), public_only, aud=AUD, nonce=NONCE, now=NOW)


def test_present_rejects_credential_with_kb_jwt(issue: Callable[..., str], holder_key: JWK) -> None:
    presentation = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW)

    with pytest.raises(ValueError, match="ending in '~'"):
        present(presentation, holder_key, aud=AUD, nonce=NONCE, now=NOW)


def test_presents_with_ed25519_holder_key(issue: Callable[..., str]) -> None:
    ed_key = JWK.generate(kty="OKP", crv="Ed25519")

    presentation = present(
        issue(holder_jwk=public_dict(ed_key)), ed_key, aud=AUD, nonce=NONCE, now=NOW
    )

    assert kb_parts(presentation)[0]["alg"] == "EdDSA"


# Credential files


def test_credential_file_round_trip(
    tmp_path: Path, issue: Callable[..., str], holder_key: JWK
) -> None:
    path = tmp_path / "credential.json"
    credential = issue()

    write_credential_file(
        path, credential=credential, holder_key=holder_key, issuer=ISSUER, expires_at=NOW + 900
    )
    loaded = read_credential_file(path)

    assert loaded.credential == credential
    assert loaded.issuer == ISSUER
    assert loaded.expires_at == NOW + 900
    assert loaded.holder_key.thumbprint() == holder_key.thumbprint()
    assert loaded.holder_key.has_private


@pytest.mark.parametrize("umask", [0o000, 0o277], ids=["permissive", "owner-read-only"])
def test_credential_file_is_mode_0600_despite_umask(
    tmp_path: Path, holder_key: JWK, umask: int
) -> None:
    path = tmp_path / "credential.json"
    previous = os.umask(umask)
    try:
        write_credential_file(
            path, credential="c~", holder_key=holder_key, issuer=ISSUER, expires_at=NOW
        )
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_replaces_existing_file(tmp_path: Path, holder_key: JWK) -> None:
    path = tmp_path / "credential.json"
    path.write_text("old contents")
    path.chmod(0o644)

    write_credential_file(
        path, credential="new~", holder_key=holder_key, issuer=ISSUER, expires_at=NOW
    )

    assert [entry.name for entry in tmp_path.iterdir()] == ["credential.json"]
    assert read_credential_file(path).credential == "new~"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_credential_file_write_reports_missing_directory(tmp_path: Path, holder_key: JWK) -> None:
    path = tmp_path / "absent" / "credential.json"

    with pytest.raises(CredentialFileError, match="absent"):
        write_credential_file(
            path, credential="c~", holder_key=holder_key, issuer=ISSUER, expires_at=NOW
        )


def test_credential_file_write_requires_private_key(tmp_path: Path, holder_key: JWK) -> None:
    with pytest.raises(ValueError, match="private"):
        write_credential_file(
            tmp_path / "c.json",
            credential="c~",
            holder_key=JWK(**public_dict(holder_key)),
            issuer=ISSUER,
            expires_at=NOW,
        )


def write_raw(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def test_read_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialFileError, match="does not exist"):
        read_credential_file(tmp_path / "missing.json")


def test_read_rejects_group_readable_file(tmp_path: Path, holder_key: JWK) -> None:
    path = tmp_path / "credential.json"
    write_credential_file(
        path, credential="c~", holder_key=holder_key, issuer=ISSUER, expires_at=NOW
    )
    path.chmod(0o640)

    with pytest.raises(CredentialFileError, match="chmod 600"):
        read_credential_file(path)


def test_read_rejects_invalid_json(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "credential.json", "{not json")

    with pytest.raises(CredentialFileError, match="not valid JSON"):
        read_credential_file(path)


@pytest.mark.parametrize("field", ["credential", "holder_key", "issuer", "expires_at"])
def test_read_rejects_missing_field(tmp_path: Path, holder_key: JWK, field: str) -> None:
    document: dict[str, Any] = {
        "credential": "c~",
        "holder_key": holder_key.export_private(as_dict=True),
        "issuer": ISSUER,
        "expires_at": NOW,
    }
    del document[field]
    path = write_raw(tmp_path / "credential.json", json.dumps(document))

    with pytest.raises(CredentialFileError, match=field):
        read_credential_file(path)


def test_read_rejects_public_holder_key_without_leaking_it(tmp_path: Path, holder_key: JWK) -> None:
    document = {
        "credential": "c~",
        "holder_key": public_dict(holder_key),
        "issuer": ISSUER,
        "expires_at": NOW,
    }
    path = write_raw(tmp_path / "credential.json", json.dumps(document))

    with pytest.raises(CredentialFileError, match="holder_key") as caught:
        read_credential_file(path)

    assert public_dict(holder_key)["x"] not in str(caught.value)


def test_read_rejects_malformed_private_key_without_leaking_it(tmp_path: Path) -> None:
    document = {
        "credential": "c~",
        "holder_key": {"kty": "EC", "crv": "P-256", "d": "c2VjcmV0LWtleS1tYXRlcmlhbA"},
        "issuer": ISSUER,
        "expires_at": NOW,
    }
    path = write_raw(tmp_path / "credential.json", json.dumps(document))

    with pytest.raises(CredentialFileError, match="holder_key") as caught:
        read_credential_file(path)

    assert "c2VjcmV0LWtleS1tYXRlcmlhbA" not in str(caught.value)
