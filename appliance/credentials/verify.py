"""Strict verification of SD-JWT presentations with key binding (RFC 9901 section 7.1 and 7.3).

The verifier of the ``sd-jwt`` 0.10.4 package leaves checks out, so this module makes
them itself:

- the presentation size is bounded before anything is parsed;
- ``alg`` is ES256 or EdDSA for the issuer-signed JWT and the KB-JWT;
- ``typ`` is ``dc+sd-jwt`` for the issuer-signed JWT and ``kb+jwt`` for the KB-JWT;
- ``exp``, ``nbf`` and ``iat`` are enforced with a leeway;
- every disclosure is well formed and referenced exactly once, and reserved or
  colliding claim names are rejected;
- key binding is required, with ``aud``, ``nonce``, ``sd_hash`` and the KB-JWT age checked.

The presentation is split strictly on ``~``. A presentation without the trailing ``~``
therefore makes the last disclosure a malformed KB-JWT instead of dropping it silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from appliance.credentials.disclosures import SD_ALG_KEY, decode_disclosure, process_disclosures
from appliance.credentials.errors import CredentialError
from appliance.credentials.holder import KB_JWT_TYP
from appliance.credentials.issue import ALWAYS_DISCLOSED_CLAIMS, SD_JWT_TYP
from appliance.credentials.jws import (
    ALLOWED_ALGS,
    PublicKey,
    check_header,
    is_int,
    load_public_key,
    parse_compact_jws,
    select_jwks_key,
    sha256_b64url,
    verify_signature,
)

# Clock skew tolerated between issuer, holder and verifier, in seconds.
DEFAULT_LEEWAY: Final = 30
# Maximum age of a KB-JWT in seconds. A presentation is built right before it is sent,
# so an older one is more likely replayed than slow.
DEFAULT_MAX_KB_AGE: Final = 300
# Maximum presentation length in characters. A presentation with five disclosures and a
# status claim, as issued here, is about 1,800 characters. The bound leaves ample room and
# stops oversized input before any base64 or JSON work is spent on it.
DEFAULT_MAX_LENGTH: Final = 64 * 1024
_ISSUER_JWT: Final = "issuer-signed JWT"
_KB_JWT: Final = "KB-JWT"


@dataclass(frozen=True)
class VerifiedCredential:
    """The result of a successful verify_presentation call."""

    issuer: str
    subject: str
    iat: int
    nbf: int
    exp: int
    kid: str
    holder_jwk: dict[str, Any]
    status: dict[str, Any] | None
    # The top-level selectively disclosed claims that the holder revealed.
    disclosed: dict[str, Any]
    # The processed payload: always-disclosed and revealed claims, without _sd and _sd_alg.
    claims: dict[str, Any]


@dataclass(frozen=True)
class _Parts:
    issuer_jwt: str
    disclosures: list[str]
    kb_jwt: str
    # Everything up to and including the last "~", which is the input of sd_hash.
    sd_hash_input: str


def verify_presentation(
    presentation: str,
    *,
    issuer_jwks: Mapping[str, Any],
    expected_issuer: str | None,
    expected_aud: str,
    expected_nonce: str,
    now: int,
    leeway: int = DEFAULT_LEEWAY,
    max_kb_age: int = DEFAULT_MAX_KB_AGE,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> VerifiedCredential:
    """Verify an SD-JWT+KB presentation and return its verified claims.

    ``issuer_jwks`` is the JWK Set (``{"keys": [...]}``) of the issuer that the relying
    party pins. ``expected_issuer`` None skips the ``iss`` comparison. ``now`` is in seconds
    since the epoch. Any failure raises CredentialError, whose code names the failed check.
    """
    parts = _split(presentation, max_length)

    issuer_jws = parse_compact_jws(parts.issuer_jwt, label=_ISSUER_JWT)
    alg = check_header(issuer_jws, label=_ISSUER_JWT, expected_typ=SD_JWT_TYP)
    kid = issuer_jws.header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise CredentialError("unknown_kid", f"{_ISSUER_JWT} header has no kid")
    issuer_key = select_jwks_key(issuer_jwks, kid=kid, alg=alg, label=_ISSUER_JWT)
    verify_signature(issuer_jws, issuer_key, alg, label=_ISSUER_JWT)

    payload = issuer_jws.payload
    issuer = _string_claim(payload, "iss")
    if expected_issuer is not None and issuer != expected_issuer:
        raise CredentialError("issuer_mismatch", f"iss is {issuer!r}, expected {expected_issuer!r}")
    subject = _string_claim(payload, "sub")
    iat, nbf, exp = _check_validity(payload, now=now, leeway=leeway)
    if payload.get(SD_ALG_KEY, "sha-256") != "sha-256":
        raise CredentialError(
            "sd_alg_unsupported", f"_sd_alg {payload[SD_ALG_KEY]!r} is not supported, only sha-256"
        )
    holder_jwk, holder_key, holder_alg = _holder_key(payload)

    disclosures = [decode_disclosure(encoded) for encoded in parts.disclosures]
    claims, disclosed_names = process_disclosures(payload, disclosures)
    not_disclosable = sorted(disclosed_names & ALWAYS_DISCLOSED_CLAIMS)
    if not_disclosable:
        raise CredentialError(
            "claim_not_disclosable",
            f"claims {not_disclosable} must be in the issuer-signed JWT, not in disclosures",
        )

    _verify_key_binding(
        parts,
        holder_key=holder_key,
        holder_alg=holder_alg,
        expected_aud=expected_aud,
        expected_nonce=expected_nonce,
        now=now,
        leeway=leeway,
        max_kb_age=max_kb_age,
    )

    status = claims.get("status")
    if status is not None and not isinstance(status, dict):
        raise CredentialError("malformed", "status claim is not a JSON object")
    return VerifiedCredential(
        issuer=issuer,
        subject=subject,
        iat=iat,
        nbf=nbf,
        exp=exp,
        kid=kid,
        holder_jwk=holder_jwk,
        status=status,
        disclosed={name: claims[name] for name in sorted(disclosed_names)},
        claims=claims,
    )


def _split(presentation: str, max_length: int) -> _Parts:
    """Split ``<issuer JWT>~<disclosure>~...~<KB-JWT>`` after checking size and alphabet."""
    if not isinstance(presentation, str):
        raise CredentialError("malformed", "presentation is not a string")
    if len(presentation) > max_length:
        raise CredentialError(
            "too_large",
            f"presentation is {len(presentation)} characters, the limit is {max_length}",
        )
    if not presentation.isascii():
        raise CredentialError("malformed", "presentation contains non-ASCII characters")
    if "~" not in presentation:
        raise CredentialError(
            "malformed", "presentation has no '~' separator, so it is not an SD-JWT"
        )
    issuer_jwt, *disclosures, kb_jwt = presentation.split("~")
    if not kb_jwt:
        raise CredentialError("kb_missing", "presentation ends with '~' and has no KB-JWT")
    return _Parts(
        issuer_jwt=issuer_jwt,
        disclosures=disclosures,
        kb_jwt=kb_jwt,
        sd_hash_input=presentation[: -len(kb_jwt)],
    )


def _string_claim(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        raise CredentialError("claim_missing", f"{_ISSUER_JWT} has no {name} claim")
    if not isinstance(value, str):
        raise CredentialError("malformed", f"{name} claim is not a string")
    return value


def _int_claim(payload: Mapping[str, Any], name: str, *, label: str) -> int:
    value = payload.get(name)
    if value is None:
        raise CredentialError("claim_missing", f"{label} has no {name} claim")
    if not is_int(value):
        raise CredentialError("malformed", f"{label} {name} claim {value!r} is not an integer")
    return value


def _check_validity(payload: Mapping[str, Any], *, now: int, leeway: int) -> tuple[int, int, int]:
    """Enforce iat, nbf and exp (RFC 7519 section 4.1), each with ``leeway`` seconds."""
    iat = _int_claim(payload, "iat", label=_ISSUER_JWT)
    nbf = _int_claim(payload, "nbf", label=_ISSUER_JWT)
    exp = _int_claim(payload, "exp", label=_ISSUER_JWT)
    if now >= exp + leeway:
        raise CredentialError("expired", f"credential expired at {exp} (now {now})")
    if now + leeway < nbf:
        raise CredentialError("not_yet_valid", f"credential is not valid before {nbf} (now {now})")
    if iat > now + leeway:
        raise CredentialError("iat_in_future", f"credential iat {iat} is in the future (now {now})")
    return iat, nbf, exp


def _holder_key(payload: Mapping[str, Any]) -> tuple[dict[str, Any], PublicKey, str]:
    """Return ``cnf.jwk`` (RFC 7800 section 3.2), the public key it names and that key's alg."""
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if jwk is None:
        raise CredentialError("cnf_missing", f"{_ISSUER_JWT} has no cnf.jwk holder key")
    if not isinstance(jwk, dict):
        raise CredentialError("cnf_invalid", "cnf.jwk is not a JSON object")
    key_type = (jwk.get("kty"), jwk.get("crv"))
    algs = [alg for alg, fitting in ALLOWED_ALGS.items() if fitting == key_type]
    if not algs:
        raise CredentialError(
            "cnf_invalid",
            f"cnf.jwk kty {key_type[0]!r} crv {key_type[1]!r} is not EC P-256 or OKP Ed25519",
        )
    key = load_public_key(
        jwk, algs[0], label="cnf.jwk", mismatch_code="cnf_invalid", invalid_code="cnf_invalid"
    )
    return jwk, key, algs[0]


def _verify_key_binding(
    parts: _Parts,
    *,
    holder_key: PublicKey,
    holder_alg: str,
    expected_aud: str,
    expected_nonce: str,
    now: int,
    leeway: int,
    max_kb_age: int,
) -> None:
    """Verify the KB-JWT (RFC 9901 section 7.3) with the holder key from cnf.jwk."""
    kb_jws = parse_compact_jws(parts.kb_jwt, label=_KB_JWT, code="kb_invalid")
    alg = check_header(kb_jws, label=_KB_JWT, expected_typ=KB_JWT_TYP)
    if alg != holder_alg:
        raise CredentialError(
            "kb_invalid",
            f"{_KB_JWT} alg {alg} does not fit the cnf.jwk key, which needs {holder_alg}",
        )
    verify_signature(kb_jws, holder_key, alg, label=_KB_JWT, code="kb_invalid")

    payload = kb_jws.payload
    if payload.get("sd_hash") != sha256_b64url(parts.sd_hash_input):
        raise CredentialError(
            "kb_sd_hash_mismatch",
            f"{_KB_JWT} sd_hash does not match the presented issuer-signed JWT and disclosures",
        )
    aud = payload.get("aud")
    if aud != expected_aud:
        raise CredentialError(
            "kb_aud_mismatch", f"{_KB_JWT} aud is {aud!r}, expected {expected_aud!r}"
        )
    nonce = payload.get("nonce")
    if nonce != expected_nonce:
        raise CredentialError(
            "kb_nonce_mismatch", f"{_KB_JWT} nonce is {nonce!r}, expected {expected_nonce!r}"
        )
    iat = payload.get("iat")
    if not is_int(iat):
        raise CredentialError("kb_invalid", f"{_KB_JWT} has no integer iat claim")
    if iat > now + leeway:
        raise CredentialError(
            "kb_iat_in_future", f"{_KB_JWT} iat {iat} is in the future (now {now})"
        )
    if now - iat > max_kb_age:
        raise CredentialError(
            "kb_stale", f"{_KB_JWT} iat {iat} is {now - iat} s old, the limit is {max_kb_age} s"
        )
