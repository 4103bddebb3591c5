"""issue_sd_jwt: the shape of what it signs, and the inputs it rejects."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.holder import SDJWTHolder
from sd_jwt.verifier import SDJWTVerifier

from appliance.credentials.jws import b64url_decode
from tests.credentials.sdjwt_forge import ISSUER, KID, NOW, STATUS_URI, b64url, public_dict


def decode_segment(segment: str) -> dict[str, Any]:
    value = json.loads(b64url_decode(segment, label="test segment"))
    assert isinstance(value, dict)
    return value


def split_issuance(credential: str) -> tuple[dict[str, Any], dict[str, Any], list[list[Any]]]:
    issuer_jwt, *disclosures, last = credential.split("~")
    header, payload, _ = issuer_jwt.split(".")
    decoded = [json.loads(b64url_decode(item, label="test disclosure")) for item in disclosures]
    assert last == ""
    return decode_segment(header), decode_segment(payload), decoded


def test_header_names_typ_alg_and_kid(issue: Callable[..., str]) -> None:
    header, _, _ = split_issuance(issue())

    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": KID}


def test_payload_discloses_fixed_claims_in_clear(
    issue: Callable[..., str], holder_key: JWK
) -> None:
    _, payload, _ = split_issuance(issue())

    assert payload["iss"] == ISSUER
    assert payload["sub"] == "alice"
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (NOW, NOW, NOW + 900)
    assert payload["_sd_alg"] == "sha-256"
    assert payload["status"] == {"status_list": {"idx": 7, "uri": STATUS_URI}}
    assert payload["vct"] == "https://appliance.example/credentials/breakglass"
    public = public_dict(holder_key)
    assert payload["cnf"] == {"jwk": {name: public[name] for name in ("kty", "crv", "x", "y")}}


def test_disclosable_claims_are_only_in_disclosures(issue: Callable[..., str]) -> None:
    _, payload, disclosures = split_issuance(issue())

    for name in ("role", "resource", "incident", "approvers"):
        assert name not in payload
    assert len(payload["_sd"]) == 4
    assert {item[1]: item[2] for item in disclosures} == {
        "role": "db-admin",
        "resource": "postgres://orders",
        "incident": "INC-4711",
        "approvers": ["bob", "carol"],
    }


def test_salts_are_random_and_at_least_128_bits(issue: Callable[..., str]) -> None:
    _, _, first = split_issuance(issue())
    _, _, second = split_issuance(issue())

    salts = [item[0] for item in first + second]
    assert len(set(salts)) == len(salts)
    assert all(len(b64url_decode(salt, label="salt")) >= 16 for salt in salts)


def test_signs_eddsa_with_ed25519_key(issue: Callable[..., str]) -> None:
    ed_key = JWK.generate(kty="OKP", crv="Ed25519")

    header, _, _ = split_issuance(issue(signing_key=ed_key, kid="ed-1"))

    assert header["alg"] == "EdDSA"


def test_reference_library_verifies_issued_credential(
    issue: Callable[..., str], issuer_key: JWK, holder_key: JWK
) -> None:
    # Cross-check with the sd-jwt package, which implements the same compact format.
    holder = SDJWTHolder(issue())
    holder.create_presentation({"role": True}, nonce="n", aud="rp", holder_key=holder_key)

    verifier = SDJWTVerifier(
        holder.sd_jwt_presentation,
        lambda issuer, header: issuer_key,
        expected_aud="rp",
        expected_nonce="n",
    )

    claims = verifier.get_verified_payload()
    assert claims["role"] == "db-admin"
    assert "incident" not in claims


def test_rejects_private_holder_jwk(issue: Callable[..., str], holder_key: JWK) -> None:
    with pytest.raises(ValueError, match="private"):
        issue(holder_jwk=holder_key.export_private(as_dict=True))


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param(public_dict(JWK.generate(kty="RSA", size=2048)), id="rsa"),
        pytest.param(public_dict(JWK.generate(kty="EC", crv="P-384")), id="p384"),
        pytest.param({"kty": "oct", "k": b64url(b"secret")}, id="symmetric"),
        pytest.param({"kty": "EC", "crv": "P-256", "x": b64url(b"\x01" * 32)}, id="no-y"),
        pytest.param(
            {"kty": "EC", "crv": "P-256", "x": b64url(b"\x01" * 32), "y": b64url(b"\x02" * 32)},
            id="point-off-curve",
        ),
    ],
)
def test_rejects_unsupported_holder_jwk(issue: Callable[..., str], jwk: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="JWK"):
        issue(holder_jwk=jwk)


def test_rejects_public_signing_key(issue: Callable[..., str], issuer_key: JWK) -> None:
    public_only = JWK(**public_dict(issuer_key))

    with pytest.raises(ValueError, match="private"):
        issue(signing_key=public_only)


def test_rejects_rsa_signing_key(issue: Callable[..., str]) -> None:
    with pytest.raises(ValueError, match="not supported"):
        issue(signing_key=JWK.generate(kty="RSA", size=2048))


@pytest.mark.parametrize(
    "times",
    [
        {"exp": NOW},
        {"nbf": NOW - 1},
        {"exp": NOW - 10},
        {"exp": float(NOW + 900)},
        {"iat": True},
    ],
    ids=["exp-equals-nbf", "nbf-before-iat", "exp-before-nbf", "float-exp", "bool-iat"],
)
def test_rejects_inconsistent_times(issue: Callable[..., str], times: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"iat|nbf|exp"):
        issue(**times)


@pytest.mark.parametrize(
    ("claims", "disclosable"),
    [
        ({"iss": "x"}, {}),
        ({}, {"exp": 1}),
        ({}, {"status": {}}),
        ({"role": "a"}, {"role": "b"}),
        ({}, {"_sd": ["x"]}),
        ({}, {"role": {"...": "x"}}),
        ({"extra": [{"_sd": []}]}, {}),
    ],
    ids=["plain-iss", "disclosable-exp", "disclosable-status", "both", "sd", "dots", "nested-sd"],
)
def test_rejects_reserved_or_colliding_claim_names(
    issue: Callable[..., str], claims: dict[str, Any], disclosable: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="claim"):
        issue(claims=claims, disclosable=disclosable)


def test_rejects_empty_kid(issue: Callable[..., str]) -> None:
    with pytest.raises(ValueError, match="kid"):
        issue(kid="")
