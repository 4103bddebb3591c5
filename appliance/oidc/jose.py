"""Compact JWS: fast ES256 signing and strict verification with an algorithm allow-list.

Verification takes the key set and the algorithms the caller allows, and
binds each algorithm to a key type: ES256 needs an EC P-256 key, RS256 and
PS256 an RSA key of at least 2048 bits, EdDSA an Ed25519 key. So `alg: none`
and algorithm confusion (an HS256 MAC keyed with the bytes of a public key)
fail before any signature is computed: no symmetric algorithm is ever
accepted. The size of a token is checked before anything is decoded.

Signing uses pyca/cryptography directly (about 16 µs per ES256 signature
here) instead of a JOSE library, because the token endpoint signs on every
request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jwcrypto import jwk

# A JWT larger than this is rejected unread. Our own tokens are under 1 KiB;
# client assertions with an RSA key reference stay well below it.
MAX_JWT_BYTES = 8192
MIN_RSA_BITS = 2048
ASYMMETRIC_ALGS = frozenset({"ES256", "RS256", "PS256", "EdDSA"})


class JoseError(Exception):
    """A JWT failed to parse or verify; `reason` names the failed check, for logs and tests."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text.isascii() or "=" in text:
        raise JoseError("segment is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JoseError("segment is not unpadded base64url") from None


def _json_segment(text: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(text))
    except (ValueError, RecursionError):
        raise JoseError("segment is not JSON") from None
    if not isinstance(value, dict):
        raise JoseError("segment is not a JSON object")
    return value


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Es256Signer:
    """An EC P-256 private key with its `kid`, ready to sign."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_jwk(cls, kid: str, key: jwk.JWK) -> Es256Signer:
        private_key = key.get_op_key("sign")
        if (
            not isinstance(private_key, ec.EllipticCurvePrivateKey)
            or private_key.curve.name != "secp256r1"
        ):
            raise ValueError(f"key {kid} is not an EC P-256 private key")
        return cls(kid, private_key)

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        header = {"alg": "ES256", "typ": typ, "kid": self.kid}
        signing_input = (
            f"{b64url_encode(_compact_json(header))}.{b64url_encode(_compact_json(claims))}"
        )
        der = self.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass(frozen=True)
class VerifiedJwt:
    header: dict[str, Any]
    claims: dict[str, Any]


def parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], str, bytes]:
    """Split a compact JWS into header, claims, signing input and signature, unverified."""
    if len(token) > MAX_JWT_BYTES:
        raise JoseError(f"token is longer than {MAX_JWT_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("token is not a compact JWS of three segments")
    header = _json_segment(parts[0])
    claims = _json_segment(parts[1])
    return header, claims, f"{parts[0]}.{parts[1]}", b64url_decode(parts[2])


def _verify_signature(alg: str, key: Any, signing_input: bytes, signature: bytes) -> None:
    try:
        if alg == "ES256":
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise JoseError("ES256 needs an EC P-256 key")
            if len(signature) != 64:
                raise JoseError("ES256 signature is not 64 bytes")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg in ("RS256", "PS256"):
            if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
                raise JoseError(f"{alg} needs an RSA key of at least {MIN_RSA_BITS} bits")
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg == "RS256"
                else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            )
            key.verify(signature, signing_input, pad, hashes.SHA256())
        elif alg == "EdDSA":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise JoseError("EdDSA needs an Ed25519 key")
            key.verify(signature, signing_input)
        else:
            raise JoseError(f"algorithm {alg!r} is not allowed")
    except InvalidSignature:
        raise JoseError("signature does not verify") from None


def public_key_of(key: jwk.JWK) -> Any:
    """Return the pyca/cryptography public key of a JWK, ignoring any private part."""
    return key.get_op_key("verify")


def verify_compact(
    token: str,
    keys: Mapping[str, Any] | Iterable[tuple[str | None, Any]],
    *,
    algorithms: frozenset[str],
    typ: str | None,
) -> VerifiedJwt:
    """Verify `token` against `keys` (kid -> public key, or (kid, key) pairs).

    With a `kid` in the header only that key is tried; without one, every key.
    `typ`, when given, must equal the header's `typ` (case-insensitive, per
    RFC 7515 section 4.1.9); None means the header's `typ` is not checked.
    """
    header, claims, signing_input, signature = parse_unverified(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in (algorithms & ASYMMETRIC_ALGS):
        raise JoseError(f"algorithm {str(alg)[:16]!r} is not allowed")
    if "crit" in header:
        raise JoseError("critical header parameters are not supported")
    if typ is not None:
        header_typ = header.get("typ")
        if not isinstance(header_typ, str) or header_typ.lower() not in (typ, f"application/{typ}"):
            raise JoseError(f"header typ must be {typ!r}")
    pairs = list(keys.items()) if isinstance(keys, Mapping) else list(keys)
    kid = header.get("kid")
    if kid is not None:
        if not isinstance(kid, str):
            raise JoseError("header kid is not a string")
        pairs = [(k, key) for k, key in pairs if k == kid]
    if not pairs:
        raise JoseError("no key matches the header kid")
    last_error = JoseError("signature does not verify")
    for _, key in pairs:
        try:
            _verify_signature(alg, key, signing_input.encode("ascii"), signature)
            return VerifiedJwt(header, claims)
        except JoseError as error:
            last_error = error
    raise last_error
