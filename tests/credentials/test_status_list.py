"""Token Status List codec against the draft's test vectors, signed tokens and check_status."""

from __future__ import annotations

import json
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jwcrypto.jwk import JWK

from appliance.credentials import (
    CredentialError,
    StatusList,
    VerifiedCredential,
    check_status,
    decode_status_list,
    encode_status_list,
    present,
    sign_status_list_token,
    verify_presentation,
    verify_status_list_token,
)
from appliance.credentials.jws import b64url_decode
from appliance.credentials.status_list import MAX_STATUS_LIST_BYTES
from tests.credentials.sdjwt_forge import AUD, ISSUER, KID, NONCE, NOW, STATUS_URI, b64url, sign_raw

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "status_list_draft.json").read_text(encoding="utf-8")
)["vectors"]
SHORT_VECTORS = [v for v in VECTORS if "statuses" in v]
LONG_VECTORS = [v for v in VECTORS if "set" in v]


@pytest.mark.parametrize("vector", SHORT_VECTORS, ids=lambda v: v["name"])
def test_decodes_draft_example(vector: dict[str, Any]) -> None:
    status_list = decode_status_list(vector["lst"], vector["bits"])

    assert status_list.data == bytes.fromhex(vector["byte_array"])
    assert [status_list.get(i) for i in range(len(vector["statuses"]))] == vector["statuses"]


@pytest.mark.parametrize("vector", SHORT_VECTORS, ids=lambda v: v["name"])
def test_encodes_draft_example_byte_for_byte(vector: dict[str, Any]) -> None:
    assert encode_status_list(vector["statuses"], vector["bits"]) == vector["lst"]


@pytest.mark.parametrize("vector", LONG_VECTORS, ids=lambda v: v["name"])
def test_decodes_draft_test_vector(vector: dict[str, Any]) -> None:
    status_list = decode_status_list(vector["lst"], vector["bits"])
    expected = {int(idx): value for idx, value in vector["set"].items()}

    assert status_list.size == vector["size"]
    for idx, value in expected.items():
        assert status_list.get(idx) == value, f"index {idx}"
    nonzero = {i for i in range(status_list.size) if status_list.get(i)}
    assert nonzero == {idx for idx, value in expected.items() if value}


@pytest.mark.parametrize("vector", LONG_VECTORS, ids=lambda v: v["name"])
def test_round_trips_draft_test_vector(vector: dict[str, Any]) -> None:
    values = [0] * vector["size"]
    for idx, value in vector["set"].items():
        values[int(idx)] = value

    encoded = encode_status_list(values, vector["bits"])

    assert decode_status_list(encoded, vector["bits"]).data == (
        decode_status_list(vector["lst"], vector["bits"]).data
    )


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_round_trips_every_value_of_each_width(bits: int) -> None:
    values = [i % (1 << bits) for i in range(37)]

    status_list = decode_status_list(encode_status_list(values, bits), bits)

    assert [status_list.get(i) for i in range(len(values))] == values


@pytest.mark.parametrize(("values", "bits"), [([2], 1), ([4], 2), ([256], 8), ([-1], 1), ([0], 3)])
def test_encode_rejects_value_or_width_out_of_range(values: list[int], bits: int) -> None:
    with pytest.raises(ValueError, match="bits"):
        encode_status_list(values, bits)


def test_get_rejects_index_outside_list() -> None:
    status_list = decode_status_list("eNrbuRgAAhcBXQ", 1)

    with pytest.raises(IndexError):
        status_list.get(16)
    with pytest.raises(IndexError):
        status_list.get(-1)


def test_decode_stops_zip_bomb_at_limit() -> None:
    bomb = b64url(zlib.compress(b"\x00" * (MAX_STATUS_LIST_BYTES + 1), 9))
    assert len(bomb) < 10_000

    with pytest.raises(CredentialError) as caught:
        decode_status_list(bomb, 1)

    assert caught.value.code == "too_large"


def test_decode_never_inflates_far_beyond_limit() -> None:
    limit = 1024 * 1024
    bomb = b64url(zlib.compress(bytes(64 * limit), 9))
    tracemalloc.start()
    try:
        with pytest.raises(CredentialError):
            decode_status_list(bomb, 1, max_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * limit, f"peak allocation {peak} bytes"


def test_decode_accepts_list_exactly_at_limit() -> None:
    lst = b64url(zlib.compress(b"\x00" * 1024, 9))

    assert decode_status_list(lst, 1, max_bytes=1024).size == 8192


@pytest.mark.parametrize(
    ("lst", "bits"),
    [
        pytest.param(b64url(b"not zlib at all"), 1, id="not-zlib"),
        pytest.param(b64url(zlib.compress(b"\xff" * 64)[:-6]), 1, id="truncated"),
        pytest.param(b64url(zlib.compress(b"\xff") + b"trailing"), 1, id="trailing-bytes"),
        pytest.param("eNrbuRgAAhcBXQ==", 1, id="padded-base64"),
        pytest.param("eNrbuRgAAhcBXQ", 3, id="bits-3"),
    ],
)
def test_decode_rejects_malformed_list(lst: str, bits: int) -> None:
    with pytest.raises(CredentialError) as caught:
        decode_status_list(lst, bits)

    assert caught.value.code == "malformed"


# Status list tokens


def sign_token(key: JWK, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "signing_key": key,
        "kid": KID,
        "uri": STATUS_URI,
        "values": [0] * 7 + [1, 2, 3] + [0] * 22,
        "bits": 2,
        "iat": NOW,
        "exp": NOW + 3600,
        "ttl": 600,
        "issuer": ISSUER,
    }
    arguments.update(overrides)
    return sign_status_list_token(**arguments)


def verify_token(token: str, jwks: dict[str, Any], **overrides: Any) -> StatusList:
    arguments: dict[str, Any] = {"issuer_jwks": jwks, "expected_uri": STATUS_URI, "now": NOW + 60}
    arguments.update(overrides)
    return verify_status_list_token(token, **arguments)


def token_rejection_code(token: str, jwks: dict[str, Any], **overrides: Any) -> str:
    with pytest.raises(CredentialError) as caught:
        verify_token(token, jwks, **overrides)
    return caught.value.code


def test_token_round_trip(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    status_list = verify_token(sign_token(issuer_key), issuer_jwks, expected_issuer=ISSUER)

    assert status_list.uri == STATUS_URI
    assert status_list.issuer == ISSUER
    assert status_list.bits == 2
    assert [status_list.get(i) for i in (6, 7, 8, 9, 10)] == [0, 1, 2, 3, 0]


def test_token_header_and_claims(issuer_key: JWK) -> None:
    header_b64, payload_b64, _ = sign_token(issuer_key).split(".")
    header = json.loads(b64url_decode(header_b64, label="header"))
    payload = json.loads(b64url_decode(payload_b64, label="payload"))

    assert header == {"alg": "ES256", "typ": "statuslist+jwt", "kid": KID}
    assert payload["sub"] == STATUS_URI
    assert (payload["iat"], payload["exp"], payload["ttl"]) == (NOW, NOW + 3600, 600)
    assert set(payload["status_list"]) == {"bits", "lst"}


@pytest.mark.parametrize("ttl", [0, -5])
def test_sign_rejects_non_positive_ttl(issuer_key: JWK, ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl"):
        sign_token(issuer_key, ttl=ttl)


def test_token_rejects_wrong_typ(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    payload = {"sub": STATUS_URI, "iat": NOW, "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}}
    token = sign_raw({"alg": "ES256", "typ": "JWT", "kid": KID}, payload, issuer_key)

    assert token_rejection_code(token, issuer_jwks) == "invalid_typ"


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_token_rejects_disallowed_alg(
    issuer_key: JWK, issuer_jwks: dict[str, Any], alg: str
) -> None:
    payload = {"sub": STATUS_URI, "iat": NOW, "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}}
    token = sign_raw({"alg": alg, "typ": "statuslist+jwt", "kid": KID}, payload, issuer_key)

    assert token_rejection_code(token, issuer_jwks) == "unsupported_alg"


def test_token_rejects_other_signer(issuer_jwks: dict[str, Any]) -> None:
    impostor = JWK.generate(kty="EC", crv="P-256")

    assert token_rejection_code(sign_token(impostor), issuer_jwks) == "signature_invalid"


def test_token_rejects_unknown_kid(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    assert token_rejection_code(sign_token(issuer_key, kid="other"), issuer_jwks) == "unknown_kid"


def test_token_rejects_other_uri(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    token = sign_token(issuer_key, uri=STATUS_URI + "-other")

    assert token_rejection_code(token, issuer_jwks) == "status_uri_mismatch"


def test_token_rejects_other_issuer(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    token = sign_token(issuer_key, issuer="https://appliance.example/o/acme/pim")

    assert token_rejection_code(token, issuer_jwks, expected_issuer=ISSUER) == "issuer_mismatch"


def test_token_rejects_expired(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    token = sign_token(issuer_key, ttl=100_000)

    assert token_rejection_code(token, issuer_jwks, now=NOW + 3600 + 30) == "status_unavailable"


def test_token_rejects_older_than_ttl(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    token = sign_token(issuer_key)

    assert token_rejection_code(token, issuer_jwks, now=NOW + 600 + 31) == "status_unavailable"


def test_token_rejects_iat_in_future(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    token = sign_token(issuer_key, iat=NOW + 200, exp=NOW + 3600)

    assert token_rejection_code(token, issuer_jwks, now=NOW) == "iat_in_future"


def test_token_rejects_oversized_token(issuer_key: JWK, issuer_jwks: dict[str, Any]) -> None:
    token = sign_token(issuer_key)

    assert token_rejection_code(token, issuer_jwks, max_length=len(token) - 1) == "too_large"


@pytest.mark.parametrize(
    "status_list",
    [
        None,
        {"bits": 1},
        {"bits": "1", "lst": "eNrbuRgAAhcBXQ"},
        {"bits": 5, "lst": "eNrbuRgAAhcBXQ"},
    ],
    ids=["missing", "no-lst", "bits-string", "bits-5"],
)
def test_token_rejects_malformed_status_list_claim(
    issuer_key: JWK, issuer_jwks: dict[str, Any], status_list: dict[str, Any] | None
) -> None:
    payload: dict[str, Any] = {"sub": STATUS_URI, "iat": NOW}
    if status_list is not None:
        payload["status_list"] = status_list
    token = sign_raw({"alg": "ES256", "typ": "statuslist+jwt", "kid": KID}, payload, issuer_key)

    assert token_rejection_code(token, issuer_jwks) == "malformed"


# check_status


@pytest.fixture
def verified(
    issue: Callable[..., str], holder_key: JWK, issuer_jwks: dict[str, Any]
) -> VerifiedCredential:
    """A verified credential whose status entry is index 7 of STATUS_URI."""
    presentation = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW)
    return verify_presentation(
        presentation,
        issuer_jwks=issuer_jwks,
        expected_issuer=ISSUER,
        expected_aud=AUD,
        expected_nonce=NONCE,
        now=NOW,
    )


def status_list_with(
    value_at_7: int, *, uri: str = STATUS_URI, issuer: str | None = ISSUER
) -> StatusList:
    decoded = decode_status_list(encode_status_list([0] * 7 + [value_at_7] + [0] * 8, 2), 2)
    return StatusList(bits=2, data=decoded.data, uri=uri, issuer=issuer)


def status_rejection_code(verified: VerifiedCredential, status_list: StatusList) -> str:
    with pytest.raises(CredentialError) as caught:
        check_status(verified, status_list)
    return caught.value.code


def test_check_status_accepts_valid_entry(verified: VerifiedCredential) -> None:
    check_status(verified, status_list_with(0))


def test_check_status_rejects_revoked(verified: VerifiedCredential) -> None:
    assert status_rejection_code(verified, status_list_with(1)) == "status_revoked"


def test_check_status_rejects_suspended(verified: VerifiedCredential) -> None:
    assert status_rejection_code(verified, status_list_with(2)) == "status_suspended"


def test_check_status_rejects_unrecognized(verified: VerifiedCredential) -> None:
    assert status_rejection_code(verified, status_list_with(3)) == "status_unrecognized"


def test_check_status_rejects_list_for_other_uri(verified: VerifiedCredential) -> None:
    other = status_list_with(0, uri=STATUS_URI + "-other")

    assert status_rejection_code(verified, other) == "status_uri_mismatch"


def test_check_status_rejects_unverified_list(verified: VerifiedCredential) -> None:
    raw = decode_status_list(encode_status_list([0] * 16, 1), 1)  # has no uri

    assert status_rejection_code(verified, raw) == "status_uri_mismatch"


def test_check_status_rejects_list_of_other_issuer(verified: VerifiedCredential) -> None:
    other = status_list_with(0, issuer="https://appliance.example/o/acme/pim")

    assert status_rejection_code(verified, other) == "status_issuer_mismatch"


def test_check_status_rejects_index_beyond_list(verified: VerifiedCredential) -> None:
    short = decode_status_list(encode_status_list([0, 0], 1), 1)  # one byte: indexes 0..7
    tiny = StatusList(bits=8, data=short.data, uri=STATUS_URI, issuer=ISSUER)

    assert status_rejection_code(verified, tiny) == "status_unavailable"


def test_check_status_rejects_credential_without_status(
    issue: Callable[..., str], holder_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    presentation = present(issue(claims={}), holder_key, aud=AUD, nonce=NONCE, now=NOW)
    without_status = verify_presentation(
        presentation,
        issuer_jwks=issuer_jwks,
        expected_issuer=ISSUER,
        expected_aud=AUD,
        expected_nonce=NONCE,
        now=NOW,
    )

    assert status_rejection_code(without_status, status_list_with(0)) == "status_missing"


def test_end_to_end_revocation(
    issuer_key: JWK, issuer_jwks: dict[str, Any], verified: VerifiedCredential
) -> None:
    values = [0] * 16
    values[7] = 1
    status_list = verify_token(
        sign_token(issuer_key, values=values, bits=1), issuer_jwks, expected_issuer=ISSUER
    )

    assert status_rejection_code(verified, status_list) == "status_revoked"
