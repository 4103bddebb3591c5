"""Strict compact JWS (RFC 7515 section 7.1) helpers for SD-JWTs, KB-JWTs and status lists.

Only two asymmetric algorithms are accepted, each bound to one key type: ES256 with a
P-256 key (RFC 7518 section 3.4) and EdDSA with an Ed25519 key (RFC 8037). Every other
``alg`` is rejected before any key is used (RFC 8725 section 3.1). That rules out
``none``, and the algorithm confusion where an HMAC ``alg`` turns a public key into a
shared secret. JSON is parsed strictly. Duplicate member names (RFC 7515 section 4) and
the constants NaN and Infinity, which JSON does not allow (RFC 8259), are rejected.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from appliance.credentials.errors import CredentialError

# Maps each accepted alg to the (kty, crv) of the only key type that may verify it.
ALLOWED_ALGS: Final[Mapping[str, tuple[str, str]]] = {
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
}
# Members that only a private or symmetric JWK carries (RFC 7518 section 6).
PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PUBLIC_JWK_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = {
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
}
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_ES256_SIGNATURE_LENGTH: Final = 64

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey


@dataclass(frozen=True)
class CompactJws:
    """A parsed, not yet verified, compact JWS whose payload is a JSON object."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, label: str, code: str = "malformed") -> bytes:
    """Decode unpadded base64url, rejecting padding and characters outside the alphabet.

    The standard library decoder skips invalid characters, so the alphabet is checked first.
    """
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise CredentialError(code, f"{label} is not valid unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sha256_b64url(text: str) -> str:
    """Return base64url(SHA-256(ASCII bytes of text)), the digest used throughout SD-JWT."""
    return b64url_encode(hashlib.sha256(text.encode("ascii")).digest())


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {name}")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member name {name!r}")
        result[name] = value
    return result


def loads_json(data: bytes, *, label: str, code: str = "malformed") -> Any:
    """Parse UTF-8 JSON strictly and raise CredentialError(code) on any defect."""
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors. Deep nesting is a RecursionError.
        raise CredentialError(code, f"{label} is not valid JSON: {exc}") from None


def dumps_json(value: Any) -> str:
    """Serialize JSON compactly, as signed into our JWTs."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def parse_compact_jws(token: str, *, label: str, code: str = "malformed") -> CompactJws:
    """Split and decode a compact JWS without verifying it.

    Header and payload must be JSON objects. Any defect raises CredentialError(code).
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise CredentialError(code, f"{label} has {len(segments)} dot-separated parts, expected 3")
    header_b64, payload_b64, signature_b64 = segments
    header = loads_json(
        b64url_decode(header_b64, label=f"{label} header", code=code),
        label=f"{label} header",
        code=code,
    )
    payload = loads_json(
        b64url_decode(payload_b64, label=f"{label} payload", code=code),
        label=f"{label} payload",
        code=code,
    )
    if not isinstance(header, dict):
        raise CredentialError(code, f"{label} header is not a JSON object")
    if not isinstance(payload, dict):
        raise CredentialError(code, f"{label} payload is not a JSON object")
    signature = b64url_decode(signature_b64, label=f"{label} signature", code=code)
    return CompactJws(
        header=header,
        payload=payload,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
    )


def check_header(jws: CompactJws, *, label: str, expected_typ: str) -> str:
    """Check the header's ``alg``, ``typ`` and ``crit`` and return the alg.

    ``crit`` is rejected because no JWS extension is understood here (RFC 7515 section 4.1.11).
    """
    alg = jws.header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        allowed = ", ".join(ALLOWED_ALGS)
        raise CredentialError("unsupported_alg", f"{label} alg {alg!r} is not allowed ({allowed})")
    typ = jws.header.get("typ")
    if typ != expected_typ:
        raise CredentialError("invalid_typ", f"{label} typ is {typ!r}, expected {expected_typ!r}")
    if "crit" in jws.header:
        raise CredentialError(
            "unsupported_header", f"{label} header has crit, which is not supported"
        )
    return alg


def public_jwk_members(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Return the required public members of an EC or OKP JWK (RFC 7638 section 3.2).

    Raise ValueError when the JWK is private, symmetric or of another key type.
    """
    private = sorted(PRIVATE_JWK_MEMBERS & set(jwk))
    if private:
        raise ValueError(f"JWK contains private key members {private}, pass the public key")
    kty = jwk.get("kty")
    members = _PUBLIC_JWK_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError(f"JWK kty {kty!r} is not supported, expected EC or OKP")
    missing = [name for name in members if not isinstance(jwk.get(name), str)]
    if missing:
        raise ValueError(f"{kty} JWK is missing members {missing}")
    return {name: jwk[name] for name in members}


def load_public_key(
    jwk: Mapping[str, Any], alg: str, *, label: str, mismatch_code: str, invalid_code: str
) -> PublicKey:
    """Load a public JWK for ``alg``.

    Its kty, crv and any alg, use and key_ops must fit ``alg`` (else ``mismatch_code``), and
    it must be a valid public key without private members (else ``invalid_code``).
    """
    expected_kty, expected_crv = ALLOWED_ALGS[alg]
    if jwk.get("kty") != expected_kty or jwk.get("crv") != expected_crv:
        raise CredentialError(
            mismatch_code,
            f"{label} is kty {jwk.get('kty')!r} crv {jwk.get('crv')!r}, "
            f"but alg {alg} needs kty {expected_kty!r} crv {expected_crv!r}",
        )
    if "alg" in jwk and jwk["alg"] != alg:
        raise CredentialError(mismatch_code, f"{label} is for alg {jwk['alg']!r}, not {alg!r}")
    if "use" in jwk and jwk["use"] != "sig":
        raise CredentialError(mismatch_code, f"{label} has use {jwk['use']!r}, expected 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise CredentialError(mismatch_code, f"{label} key_ops {key_ops!r} does not allow verify")
    try:
        members = public_jwk_members(jwk)
        key = JWK(**members).get_op_key("verify")
    except (ValueError, TypeError, JWException) as exc:
        raise CredentialError(invalid_code, f"{label} is not a valid public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | Ed25519PublicKey):
        raise CredentialError(invalid_code, f"{label} did not load as an EC or Ed25519 public key")
    return key


def select_jwks_key(jwks: Mapping[str, Any], *, kid: str, alg: str, label: str) -> PublicKey:
    """Find the one JWKS key (RFC 7517 section 5) whose kid matches and load it for ``alg``."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list) or not all(isinstance(key, Mapping) for key in keys):
        raise CredentialError("jwks_invalid", "issuer JWKS has no list of JWK objects under 'keys'")
    matches = [key for key in keys if key.get("kid") == kid]
    if not matches:
        raise CredentialError("unknown_kid", f"{label} kid {kid!r} is not in the issuer JWKS")
    if len(matches) > 1:
        raise CredentialError(
            "jwks_invalid", f"issuer JWKS has {len(matches)} keys with kid {kid!r}"
        )
    # A JWKS key with private members fails in load_public_key as jwks_invalid.
    return load_public_key(
        matches[0],
        alg,
        label=f"issuer JWKS key {kid!r}",
        mismatch_code="key_mismatch",
        invalid_code="jwks_invalid",
    )


def verify_signature(
    jws: CompactJws, key: PublicKey, alg: str, *, label: str, code: str = "signature_invalid"
) -> None:
    """Verify the JWS signature with ``key``, which the caller has already matched to ``alg``."""
    try:
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            # JWS carries R || S as two 32-byte integers (RFC 7518 section 3.4), not DER.
            if len(jws.signature) != _ES256_SIGNATURE_LENGTH:
                raise InvalidSignature
            r = int.from_bytes(jws.signature[:32], "big")
            s = int.from_bytes(jws.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(SHA256()))
        elif alg == "EdDSA" and isinstance(key, Ed25519PublicKey):
            key.verify(jws.signature, jws.signing_input)
        else:
            raise InvalidSignature
    except InvalidSignature:
        message = f"{label} signature does not verify with the {alg} key"
        raise CredentialError(code, message) from None


def signing_alg(key: JWK) -> str:
    """Return the JWS alg for a private signing JWK: ES256 for P-256, EdDSA for Ed25519."""
    if not key.has_private:
        raise ValueError("signing key has no private part")
    kty, crv = key.get("kty"), key.get("crv")
    for alg, (alg_kty, alg_crv) in ALLOWED_ALGS.items():
        if (kty, crv) == (alg_kty, alg_crv):
            return alg
    raise ValueError(f"signing key kty {kty!r} crv {crv!r} is not supported, use P-256 or Ed25519")


def sign_compact(key: JWK, header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """Sign ``payload`` as a compact JWS. ``header`` must name the alg of ``key``."""
    jws = JWS(payload=dumps_json(dict(payload)))
    jws.add_signature(key, alg=header["alg"], protected=dumps_json(dict(header)))
    token = jws.serialize(compact=True)
    if not isinstance(token, str):
        raise TypeError("jwcrypto returned a non-string compact serialization")
    return token


def is_int(value: object) -> TypeGuard[int]:
    """Return whether value is a JSON integer (bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)
