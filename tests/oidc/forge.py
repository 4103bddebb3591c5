"""Building JWTs for negative tests: any header, any claims, any key, or none at all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from jwcrypto import jwk, jws


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def signed(key: jwk.JWK, claims: dict[str, Any], *, alg: str = "ES256", **header: Any) -> str:
    token = jws.JWS(json.dumps(claims).encode())
    token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, **header}))
    return str(token.serialize(compact=True))


def unsigned(claims: dict[str, Any], **header: Any) -> str:
    """An `alg: none` token, with an empty signature."""
    return f"{segment({'alg': 'none', **header})}.{segment(claims)}."


def hs256_with_public_key(public: jwk.JWK, claims: dict[str, Any], **header: Any) -> str:
    """Algorithm confusion: an HS256 MAC keyed with the bytes of the server's public key."""
    signing_input = f"{segment({'alg': 'HS256', **header})}.{segment(claims)}"
    secret = public.export_to_pem()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def assertion_claims(
    client_id: str, audience: str, *, now: float | None = None, **overrides: Any
) -> dict[str, Any]:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + 60,
        "jti": secrets.token_urlsafe(12),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}
