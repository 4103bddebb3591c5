"""Issue SD-JWT credentials with key binding (RFC 9901 section 4 and 5).

The output is the compact issuance form ``<issuer-signed JWT>~<disclosure>~...~``
(RFC 9901 section 4). The header carries ``typ: dc+sd-jwt``, the SD-JWT VC media type,
because strict verifiers reject the ``sd-jwt`` package default ``example+sd-jwt``.

The payload always discloses ``iss``, ``sub``, ``iat``, ``nbf``, ``exp``, ``_sd_alg`` and
``cnf`` (RFC 7800 section 3.2), plus the plain ``claims`` and ``vct``. Each
``disclosable`` claim becomes one top-level disclosure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer

from appliance.credentials.disclosures import ARRAY_DIGEST_KEY, SD_ALG_KEY, SD_DIGESTS_KEY
from appliance.credentials.jws import ALLOWED_ALGS, is_int, public_jwk_members, signing_alg

SD_JWT_TYP: Final = "dc+sd-jwt"
# Claims that are always in the clear. verify_presentation rejects them as disclosures.
ALWAYS_DISCLOSED_CLAIMS: Final = frozenset(
    {"iss", "sub", "iat", "nbf", "exp", "cnf", "status", "vct", SD_ALG_KEY}
)
_ISSUER_SET_CLAIMS: Final = frozenset({"iss", "sub", "iat", "nbf", "exp", "cnf", "vct", SD_ALG_KEY})


def issue_sd_jwt(
    *,
    signing_key: JWK,
    kid: str,
    issuer: str,
    subject: str,
    holder_jwk: Mapping[str, Any],
    iat: int,
    nbf: int,
    exp: int,
    disclosable: Mapping[str, Any],
    claims: Mapping[str, Any] | None = None,
    vct: str | None = None,
) -> str:
    """Sign an SD-JWT bound to ``holder_jwk`` and return its compact issuance form.

    ``signing_key`` must be a private P-256 (signed with ES256) or Ed25519 (EdDSA) JWK.
    ``holder_jwk`` must be a public EC P-256 or OKP Ed25519 JWK, and only its required
    public members go into ``cnf.jwk``. Raise ValueError for a private or unsupported
    holder key, for times that are not integers with ``iat <= nbf < exp``, and for claim
    names that collide with the always-disclosed claims, with each other or with the
    reserved names ``_sd`` and ``...``.
    """
    alg = signing_alg(signing_key)
    if not kid:
        raise ValueError("kid must not be empty")
    cnf_jwk = _holder_public_jwk(holder_jwk)
    _check_times(iat=iat, nbf=nbf, exp=exp)
    plain_claims = dict(claims or {})
    _check_claim_names(plain_claims, disclosable)

    user_claims: dict[Any, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": iat,
        "nbf": nbf,
        "exp": exp,
        "cnf": {"jwk": cnf_jwk},
    }
    if vct is not None:
        user_claims["vct"] = vct
    user_claims.update(plain_claims)
    for name, value in disclosable.items():
        user_claims[SDObj(name)] = value

    if SDJWTIssuer.unsafe_randomness:
        # The package's deterministic salts exist only to reproduce specification examples.
        raise RuntimeError(
            "cannot issue: sd_jwt unsafe_randomness is enabled and would make salts predictable"
        )
    # NOTE: no decoy digests are added (RFC 9901 section 4.2.5), so the length of _sd shows
    # how many claims are disclosable. The package's decoy option also puts _sd into cnf.jwk.
    sd_jwt = SDJWTIssuer(
        user_claims,
        signing_key,
        sign_alg=alg,
        extra_header_parameters={"typ": SD_JWT_TYP, "kid": kid},
    )
    issuance = sd_jwt.sd_jwt_issuance
    if not isinstance(issuance, str):
        raise TypeError("sd_jwt returned a non-string issuance")
    return issuance


def _holder_public_jwk(holder_jwk: Mapping[str, Any]) -> dict[str, Any]:
    public = public_jwk_members(holder_jwk)
    if (public["kty"], public["crv"]) not in ALLOWED_ALGS.values():
        raise ValueError(
            f"holder JWK kty {public['kty']!r} crv {public['crv']!r} is not supported, "
            "use EC P-256 or OKP Ed25519"
        )
    try:
        JWK(**public).get_op_key("verify")  # loading the key checks that the point is on the curve
    except (ValueError, TypeError, JWException) as exc:
        raise ValueError(f"holder JWK is not a valid public key: {exc}") from None
    return public


def _check_times(*, iat: int, nbf: int, exp: int) -> None:
    for name, value in (("iat", iat), ("nbf", nbf), ("exp", exp)):
        if not is_int(value):
            raise ValueError(f"{name} must be an integer of seconds since the epoch, got {value!r}")
    if not iat <= nbf < exp:
        raise ValueError(f"times must satisfy iat <= nbf < exp, got iat={iat} nbf={nbf} exp={exp}")


def _check_claim_names(claims: Mapping[str, Any], disclosable: Mapping[str, Any]) -> None:
    issuer_set = sorted(_ISSUER_SET_CLAIMS & set(claims))
    if issuer_set:
        raise ValueError(f"claims {issuer_set} come from issue_sd_jwt arguments, not from claims")
    not_disclosable = sorted(ALWAYS_DISCLOSED_CLAIMS & set(disclosable))
    if not_disclosable:
        raise ValueError(f"claims {not_disclosable} are always disclosed and cannot be disclosable")
    both = sorted(set(claims) & set(disclosable))
    if both:
        raise ValueError(f"claims {both} are given both as plain and as disclosable")
    for name in disclosable:
        if not isinstance(name, str):
            raise ValueError(f"disclosable claim name {name!r} is not a string")
    _reject_reserved_names(claims, "claims")
    _reject_reserved_names(disclosable, "disclosable")


def _reject_reserved_names(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if name in (SD_DIGESTS_KEY, ARRAY_DIGEST_KEY):
                raise ValueError(f"{where} uses the reserved SD-JWT claim name {name!r}")
            _reject_reserved_names(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_reserved_names(item, where)
