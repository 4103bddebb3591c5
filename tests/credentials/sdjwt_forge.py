"""Constants and builders for hand-made SD-JWTs, KB-JWTs and JWS tokens in the tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwcrypto.jwk import JWK

NOW = 1_900_000_000
ISSUER = "https://appliance.example/o/acme/breakglass"
KID = "breakglass-2026-01"
AUD = "https://bastion.example"
NONCE = "n-0S6_WzA2Mj"
STATUS_URI = "https://appliance.example/o/acme/breakglass/status/1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value).encode("utf-8"))


def digest_of(disclosure: str) -> str:
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def public_dict(key: JWK) -> dict[str, Any]:
    return dict(key.export_public(as_dict=True))


def sign_raw(header: Mapping[str, Any], payload: Mapping[str, Any], key: JWK | None) -> str:
    """Sign a compact JWS with any header, including algs our code refuses to produce.

    ``none`` gets an empty signature. HS256 uses ``key`` exported as public JWK JSON as the
    HMAC secret, which is the algorithm-confusion attack on a verifier that lets the
    token choose the algorithm.
    """
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    alg = header["alg"]
    if alg == "none":
        return signing_input + "."
    assert key is not None
    if alg == "HS256":
        secret = key.export_public().encode("utf-8")
        mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + b64url(mac)
    private = key.get_op_key("sign")
    data = signing_input.encode("ascii")
    if alg == "ES256":
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        signature = private.sign(data)
    elif alg == "RS256":
        signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"sign_raw does not support alg {alg}")
    return signing_input + "." + b64url(signature)


class Forge:
    """Build issuer-signed JWTs, disclosures and KB-JWTs field by field for negative tests."""

    def __init__(self, issuer_key: JWK, holder_key: JWK) -> None:
        self.issuer_key = issuer_key
        self.holder_key = holder_key

    @staticmethod
    def disclosure(*items: Any) -> str:
        return b64url_json(list(items))

    def payload(self, disclosures: Sequence[str] = (), **claims: Any) -> dict[str, Any]:
        """Return a valid issuer payload whose _sd lists the digests of ``disclosures``."""
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "alice",
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 900,
            "cnf": {"jwk": public_dict(self.holder_key)},
            "_sd_alg": "sha-256",
            "_sd": sorted(digest_of(d) for d in disclosures),
        }
        payload.update(claims)
        return {name: value for name, value in payload.items() if value is not None}

    def issuer_jwt(
        self, payload: Mapping[str, Any], *, key: JWK | None = None, **header: Any
    ) -> str:
        full_header: dict[str, Any] = {"alg": "ES256", "typ": "dc+sd-jwt", "kid": KID}
        full_header.update(header)
        full_header = {name: value for name, value in full_header.items() if value is not None}
        return sign_raw(full_header, payload, key or self.issuer_key)

    def present(
        self,
        issuer_jwt: str,
        disclosures: Sequence[str] = (),
        *,
        key: JWK | None = None,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Append disclosures and a KB-JWT whose claims default to valid values."""
        prefix = issuer_jwt + "~" + "".join(d + "~" for d in disclosures)
        kb_payload: dict[str, Any] = {
            "iat": NOW + 5,
            "aud": AUD,
            "nonce": NONCE,
            "sd_hash": digest_of(prefix),
        }
        kb_payload.update(claims)
        kb_payload = {name: value for name, value in kb_payload.items() if value is not None}
        kb_header = {"alg": "ES256", "typ": "kb+jwt", **(header or {})}
        return prefix + sign_raw(kb_header, kb_payload, key or self.holder_key)
