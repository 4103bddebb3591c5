"""verify_presentation: the happy path and one test per rejected case.

Each negative test changes one thing in an otherwise valid presentation and checks the
error code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jwcrypto.jwk import JWK

from appliance.credentials import CredentialError, VerifiedCredential, present, verify_presentation
from tests.credentials.sdjwt_forge import (
    AUD,
    ISSUER,
    KID,
    NONCE,
    NOW,
    STATUS_URI,
    Forge,
    b64url,
    b64url_json,
    public_dict,
    sign_raw,
)


def verify(presentation: str, jwks: dict[str, Any], **overrides: Any) -> VerifiedCredential:
    arguments: dict[str, Any] = {
        "issuer_jwks": jwks,
        "expected_issuer": ISSUER,
        "expected_aud": AUD,
        "expected_nonce": NONCE,
        "now": NOW + 10,
    }
    arguments.update(overrides)
    return verify_presentation(presentation, **arguments)


def rejection_code(presentation: str, jwks: dict[str, Any], **overrides: Any) -> str:
    with pytest.raises(CredentialError) as caught:
        verify(presentation, jwks, **overrides)
    return caught.value.code


# Happy paths


def test_verifies_full_presentation(
    presentation: str, issuer_jwks: dict[str, Any], holder_key: JWK
) -> None:
    verified = verify(presentation, issuer_jwks)

    assert verified.issuer == ISSUER
    assert verified.subject == "alice"
    assert (verified.iat, verified.nbf, verified.exp) == (NOW, NOW, NOW + 900)
    assert verified.kid == KID
    assert verified.holder_jwk == {
        name: public_dict(holder_key)[name] for name in ("kty", "crv", "x", "y")
    }
    assert verified.status == {"status_list": {"idx": 7, "uri": STATUS_URI}}
    assert verified.disclosed == {
        "approvers": ["bob", "carol"],
        "incident": "INC-4711",
        "resource": "postgres://orders",
        "role": "db-admin",
    }
    assert verified.claims["vct"] == "https://appliance.example/credentials/breakglass"
    assert verified.claims["role"] == "db-admin"
    assert "_sd" not in verified.claims
    assert "_sd_alg" not in verified.claims


def test_verifies_partial_disclosure(
    issue: Callable[..., str], holder_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    partial = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW, disclose=["role"])

    verified = verify(partial, issuer_jwks)

    assert verified.disclosed == {"role": "db-admin"}
    assert "incident" not in verified.claims


def test_verifies_presentation_without_disclosures(
    issue: Callable[..., str], holder_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    bare = present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW, disclose=[])

    verified = verify(bare, issuer_jwks)

    assert verified.disclosed == {}


def test_verifies_eddsa_issuer_and_holder(issue: Callable[..., str]) -> None:
    issuer_key = JWK.generate(kty="OKP", crv="Ed25519", kid="ed-1")
    holder_key = JWK.generate(kty="OKP", crv="Ed25519")
    credential = issue(signing_key=issuer_key, kid="ed-1", holder_jwk=public_dict(holder_key))
    presented = present(credential, holder_key, aud=AUD, nonce=NONCE, now=NOW)

    verified = verify(presented, {"keys": [public_dict(issuer_key)]})

    assert verified.kid == "ed-1"
    assert verified.holder_jwk["crv"] == "Ed25519"


def test_accepts_any_issuer_without_expectation(
    presentation: str, issuer_jwks: dict[str, Any]
) -> None:
    verified = verify(presentation, issuer_jwks, expected_issuer=None)

    assert verified.issuer == ISSUER


def test_accepts_expiry_within_leeway(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    verified = verify(presentation, issuer_jwks, now=NOW + 900 + 29, max_kb_age=10_000)

    assert verified.exp == NOW + 900


# Size and structure


def test_rejects_oversized_presentation_before_parsing(issuer_jwks: dict[str, Any]) -> None:
    garbage = "!" * 70_000  # would be "malformed" if it were parsed

    assert rejection_code(garbage, issuer_jwks) == "too_large"


def test_rejects_presentation_over_custom_limit(
    presentation: str, issuer_jwks: dict[str, Any]
) -> None:
    limit = len(presentation) - 1

    assert rejection_code(presentation, issuer_jwks, max_length=limit) == "too_large"


def test_rejects_plain_jwt_without_separator(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    plain_jwt = forge.issuer_jwt(forge.payload())

    assert rejection_code(plain_jwt, issuer_jwks) == "malformed"


def test_rejects_non_ascii_presentation(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    assert rejection_code("é" + presentation, issuer_jwks) == "malformed"


def test_rejects_issuer_payload_with_duplicate_member(
    forge: Forge, issuer_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    header = b64url_json({"alg": "ES256", "typ": "dc+sd-jwt", "kid": KID})
    body = b64url(b'{"iss": "https://evil.example", "iss": "' + ISSUER.encode() + b'"}')
    issuer_jwt = f"{header}.{body}.{b64url(b'0' * 64)}"

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "malformed"


# Algorithm, typ and key selection of the issuer-signed JWT


def test_rejects_issuer_alg_none(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(), alg="none")

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "unsupported_alg"


def test_rejects_hs256_keyed_with_issuer_public_key(
    forge: Forge, issuer_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    # Algorithm confusion: the attacker MACs with the public JWK as the shared secret.
    issuer_jwt = forge.issuer_jwt(forge.payload(), alg="HS256", key=issuer_key)

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "unsupported_alg"


def test_rejects_rs256_even_with_matching_jwks_key(forge: Forge) -> None:
    rsa_key = JWK.generate(kty="RSA", size=2048, kid=KID)
    issuer_jwt = forge.issuer_jwt(forge.payload(), alg="RS256", key=rsa_key)

    code = rejection_code(forge.present(issuer_jwt), {"keys": [public_dict(rsa_key)]})

    assert code == "unsupported_alg"


@pytest.mark.parametrize("typ", ["example+sd-jwt", "vc+sd-jwt", "JWT", "DC+SD-JWT", None])
def test_rejects_wrong_issuer_typ(
    forge: Forge, issuer_jwks: dict[str, Any], typ: str | None
) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(), typ=typ)

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "invalid_typ"


def test_rejects_issuer_header_with_crit(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(), crit=["exp"])

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "unsupported_header"


def test_rejects_unknown_kid(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(), kid="retired-2024")

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "unknown_kid"


def test_rejects_missing_kid(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(), kid=None)

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "unknown_kid"


def test_rejects_key_of_another_issuer(presentation: str) -> None:
    other = JWK.generate(kty="EC", crv="P-256", kid=KID)

    assert rejection_code(presentation, {"keys": [public_dict(other)]}) == "signature_invalid"


def test_rejects_jwks_key_type_not_fitting_alg(presentation: str) -> None:
    ed_key = JWK.generate(kty="OKP", crv="Ed25519", kid=KID)

    assert rejection_code(presentation, {"keys": [public_dict(ed_key)]}) == "key_mismatch"


@pytest.mark.parametrize(
    "extra",
    [{"alg": "ES384"}, {"use": "enc"}, {"key_ops": ["encrypt"]}],
    ids=["alg", "use", "key_ops"],
)
def test_rejects_jwks_key_restricted_to_other_use(
    presentation: str, issuer_key: JWK, extra: dict[str, Any]
) -> None:
    jwk = {**public_dict(issuer_key), **extra}

    assert rejection_code(presentation, {"keys": [jwk]}) == "key_mismatch"


def test_rejects_jwks_key_off_curve(presentation: str) -> None:
    off_curve = {
        "kty": "EC",
        "crv": "P-256",
        "kid": KID,
        "x": b64url(b"\x01" * 32),
        "y": b64url(b"\x02" * 32),
    }

    assert rejection_code(presentation, {"keys": [off_curve]}) == "jwks_invalid"


def test_rejects_jwks_with_private_key(presentation: str, issuer_key: JWK) -> None:
    jwks = {"keys": [issuer_key.export_private(as_dict=True)]}

    assert rejection_code(presentation, jwks) == "jwks_invalid"


def test_rejects_jwks_with_ambiguous_kid(presentation: str, issuer_key: JWK) -> None:
    other = JWK.generate(kty="EC", crv="P-256", kid=KID)
    jwks = {"keys": [public_dict(issuer_key), public_dict(other)]}

    assert rejection_code(presentation, jwks) == "jwks_invalid"


def test_rejects_tampered_issuer_payload(
    presentation: str, forge: Forge, issuer_jwks: dict[str, Any]
) -> None:
    header, _, signature = presentation.split("~")[0].split(".")
    forged_body = b64url_json(forge.payload(sub="mallory"))
    tampered = presentation.replace(
        presentation.split("~")[0], f"{header}.{forged_body}.{signature}"
    )

    assert rejection_code(tampered, issuer_jwks) == "signature_invalid"


# Claims of the issuer-signed JWT


def test_rejects_unexpected_issuer(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    code = rejection_code(
        presentation, issuer_jwks, expected_issuer="https://appliance.example/o/acme/pim"
    )

    assert code == "issuer_mismatch"


def test_rejects_expired_credential(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    code = rejection_code(presentation, issuer_jwks, now=NOW + 900 + 30, max_kb_age=10_000)

    assert code == "expired"


def test_rejects_credential_before_nbf(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(nbf=NOW + 60))

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "not_yet_valid"


def test_rejects_iat_in_future(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(iat=NOW + 60))

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "iat_in_future"


@pytest.mark.parametrize("claim", ["iss", "sub", "iat", "nbf", "exp"])
def test_rejects_missing_required_claim(
    forge: Forge, issuer_jwks: dict[str, Any], claim: str
) -> None:
    payload = forge.payload()
    del payload[claim]

    assert rejection_code(forge.present(forge.issuer_jwt(payload)), issuer_jwks) == "claim_missing"


@pytest.mark.parametrize(("claim", "value"), [("exp", "tomorrow"), ("exp", True), ("iss", 7)])
def test_rejects_claim_of_wrong_type(
    forge: Forge, issuer_jwks: dict[str, Any], claim: str, value: Any
) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(**{claim: value}))

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "malformed"


def test_rejects_unsupported_sd_alg(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload(_sd_alg="sha-512"))

    assert rejection_code(forge.present(issuer_jwt), issuer_jwks) == "sd_alg_unsupported"


def test_rejects_missing_cnf(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    payload = forge.payload()
    del payload["cnf"]

    assert rejection_code(forge.present(forge.issuer_jwt(payload)), issuer_jwks) == "cnf_missing"


def test_rejects_private_cnf_jwk(
    forge: Forge, holder_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    payload = forge.payload(cnf={"jwk": holder_key.export_private(as_dict=True)})

    assert rejection_code(forge.present(forge.issuer_jwt(payload)), issuer_jwks) == "cnf_invalid"


def test_rejects_cnf_jwk_off_curve(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    off_curve = {"kty": "EC", "crv": "P-256", "x": b64url(b"\x01" * 32), "y": b64url(b"\x02" * 32)}
    payload = forge.payload(cnf={"jwk": off_curve})

    assert rejection_code(forge.present(forge.issuer_jwt(payload)), issuer_jwks) == "cnf_invalid"


def test_rejects_rsa_cnf_jwk(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    rsa_key = JWK.generate(kty="RSA", size=2048)
    payload = forge.payload(cnf={"jwk": public_dict(rsa_key)})

    assert rejection_code(forge.present(forge.issuer_jwt(payload)), issuer_jwks) == "cnf_invalid"


# Disclosures in a signed presentation


def test_rejects_unreferenced_disclosure(
    presentation: str, forge: Forge, issuer_jwks: dict[str, Any]
) -> None:
    role = forge.disclosure("salt-1", "role", "db-admin")
    stray = forge.disclosure("salt-2", "role2", "superuser")
    issuer_jwt = forge.issuer_jwt(forge.payload([role]))

    code = rejection_code(forge.present(issuer_jwt, [role, stray]), issuer_jwks)

    assert code == "disclosure_unreferenced"


def test_rejects_malformed_disclosure(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    bad = forge.disclosure("salt-1", "role", "db-admin", "extra")
    issuer_jwt = forge.issuer_jwt(forge.payload([bad]))

    assert rejection_code(forge.present(issuer_jwt, [bad]), issuer_jwks) == "disclosure_invalid"


def test_rejects_empty_disclosure(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    issuer_jwt = forge.issuer_jwt(forge.payload())
    presented = forge.present(issuer_jwt).replace("~", "~~", 1)  # jwt~~kb

    assert rejection_code(presented, issuer_jwks) == "disclosure_invalid"


def test_rejects_duplicate_digests(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    role = forge.disclosure("salt-1", "role", "db-admin")
    payload = forge.payload([role])
    payload["_sd"] = payload["_sd"] * 2

    code = rejection_code(forge.present(forge.issuer_jwt(payload), [role]), issuer_jwks)

    assert code == "digest_duplicate"


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_rejects_reserved_disclosure_name(
    forge: Forge, issuer_jwks: dict[str, Any], name: str
) -> None:
    reserved = forge.disclosure("salt-1", name, ["x"])
    issuer_jwt = forge.issuer_jwt(forge.payload([reserved]))

    code = rejection_code(forge.present(issuer_jwt, [reserved]), issuer_jwks)

    assert code == "reserved_claim_name"


def test_rejects_disclosure_colliding_with_claim(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    role = forge.disclosure("salt-1", "role", "superuser")
    issuer_jwt = forge.issuer_jwt(forge.payload([role], role="viewer"))

    assert rejection_code(forge.present(issuer_jwt, [role]), issuer_jwks) == "claim_collision"


@pytest.mark.parametrize("name", ["status", "vct"])
def test_rejects_always_disclosed_claim_as_disclosure(
    forge: Forge, issuer_jwks: dict[str, Any], name: str
) -> None:
    disclosure = forge.disclosure("salt-1", name, {"status_list": {"idx": 0, "uri": "x"}})
    issuer_jwt = forge.issuer_jwt(forge.payload([disclosure]))

    code = rejection_code(forge.present(issuer_jwt, [disclosure]), issuer_jwks)

    assert code == "claim_not_disclosable"


# Key binding


def test_rejects_presentation_without_kb_jwt(
    issue: Callable[..., str], issuer_jwks: dict[str, Any]
) -> None:
    credential = issue()  # the issuance form ends in "~" and carries no KB-JWT

    assert rejection_code(credential, issuer_jwks) == "kb_missing"


def test_rejects_last_disclosure_without_trailing_separator(
    issue: Callable[..., str], issuer_jwks: dict[str, Any]
) -> None:
    # The sd-jwt package would drop the last disclosure. Here it must be read as the KB-JWT.
    without_tilde = issue()[:-1]

    assert rejection_code(without_tilde, issuer_jwks) == "kb_invalid"


def test_rejects_kb_jwt_signed_by_other_key(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    thief = JWK.generate(kty="EC", crv="P-256")
    presented = forge.present(forge.issuer_jwt(forge.payload()), key=thief)

    assert rejection_code(presented, issuer_jwks) == "kb_invalid"


def test_rejects_kb_alg_none(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    presented = forge.present(forge.issuer_jwt(forge.payload()), header={"alg": "none"})

    assert rejection_code(presented, issuer_jwks) == "unsupported_alg"


def test_rejects_kb_hs256_keyed_with_holder_public_key(
    forge: Forge, holder_key: JWK, issuer_jwks: dict[str, Any]
) -> None:
    presented = forge.present(
        forge.issuer_jwt(forge.payload()), header={"alg": "HS256"}, key=holder_key
    )

    assert rejection_code(presented, issuer_jwks) == "unsupported_alg"


def test_rejects_kb_alg_not_fitting_holder_key(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    ed_key = JWK.generate(kty="OKP", crv="Ed25519")
    presented = forge.present(
        forge.issuer_jwt(forge.payload()), header={"alg": "EdDSA"}, key=ed_key
    )

    assert rejection_code(presented, issuer_jwks) == "kb_invalid"


@pytest.mark.parametrize("typ", ["JWT", "dc+sd-jwt", None])
def test_rejects_wrong_kb_typ(forge: Forge, issuer_jwks: dict[str, Any], typ: str | None) -> None:
    presented = forge.present(forge.issuer_jwt(forge.payload()), header={"typ": typ})

    assert rejection_code(presented, issuer_jwks) == "invalid_typ"


def test_rejects_sd_hash_mismatch_after_dropping_disclosure(
    presentation: str, issuer_jwks: dict[str, Any]
) -> None:
    issuer_jwt, *disclosures, kb_jwt = presentation.split("~")
    shortened = "~".join([issuer_jwt, *disclosures[1:], kb_jwt])

    assert rejection_code(shortened, issuer_jwks) == "kb_sd_hash_mismatch"


def test_rejects_missing_sd_hash(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    presented = forge.present(forge.issuer_jwt(forge.payload()), sd_hash=None)

    assert rejection_code(presented, issuer_jwks) == "kb_sd_hash_mismatch"


def test_rejects_kb_for_other_audience(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    code = rejection_code(presentation, issuer_jwks, expected_aud="https://other-rp.example")

    assert code == "kb_aud_mismatch"


def test_rejects_kb_with_audience_list(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    presented = forge.present(forge.issuer_jwt(forge.payload()), aud=[AUD, "https://x.example"])

    assert rejection_code(presented, issuer_jwks) == "kb_aud_mismatch"


def test_rejects_replayed_nonce(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    assert rejection_code(presentation, issuer_jwks, expected_nonce="fresh") == "kb_nonce_mismatch"


def test_rejects_stale_kb_jwt(presentation: str, issuer_jwks: dict[str, Any]) -> None:
    # The KB-JWT was made at NOW + 5, and 301 s after that exceeds the default of 300 s.
    assert rejection_code(presentation, issuer_jwks, now=NOW + 5 + 301) == "kb_stale"


def test_rejects_kb_iat_in_future(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    presented = forge.present(forge.issuer_jwt(forge.payload()), iat=NOW + 10 + 31)

    assert rejection_code(presented, issuer_jwks) == "kb_iat_in_future"


def test_rejects_kb_without_iat(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    presented = forge.present(forge.issuer_jwt(forge.payload()), iat=None)

    assert rejection_code(presented, issuer_jwks) == "kb_invalid"


def test_error_message_names_value_without_key_material(
    presentation: str, issuer_jwks: dict[str, Any]
) -> None:
    with pytest.raises(CredentialError) as caught:
        verify(presentation, issuer_jwks, expected_aud="https://other-rp.example")

    message = str(caught.value)
    assert AUD in message
    assert "https://other-rp.example" in message
    assert issuer_jwks["keys"][0]["x"] not in message


def test_sign_raw_produces_verifiable_es256(forge: Forge, issuer_jwks: dict[str, Any]) -> None:
    # Guards the forge itself: a forged but correct presentation must verify.
    presented = forge.present(forge.issuer_jwt(forge.payload()))

    assert verify(presented, issuer_jwks).subject == "alice"
    assert sign_raw({"alg": "none"}, {}, None).endswith(".")
