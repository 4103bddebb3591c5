"""Signing keys per org and plane: creation, loading and JWKS publication.

A plane creates its first key on demand, under a transaction-scoped advisory
lock so that concurrent replicas create exactly one. Private keys leave this
module only as jwcrypto JWK objects in memory; in the database they exist only
as ciphertext (see `envelope`). Decrypted keys are cached per kid, which is
safe because a kid's key material never changes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from jwcrypto import jwk

from appliance.db.queries.keys import (
    SIGNING_KEY_ACTIVE,
    SIGNING_KEY_INSERT,
    SIGNING_KEY_LOCK_PLANE,
    SIGNING_KEYS_PUBLISHED,
)
from appliance.keys.envelope import Envelope, associated_data

DEFAULT_ALG = "ES256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: jwk.JWK


def _public_jwk(key: jwk.JWK, kid: str, alg: str) -> dict[str, Any]:
    public: dict[str, Any] = key.export_public(as_dict=True)
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    return public


def new_kid(plane: str) -> str:
    return f"{plane}-{secrets.token_hex(8)}"


class SigningKeyStore:
    """Signing keys of one plane, for every org, backed by `signing_keys`."""

    def __init__(self, plane: str, master_secret: bytes) -> None:
        self.plane = plane
        self._envelope = Envelope.for_plane(master_secret, plane)
        self._cache: dict[str, SigningKey] = {}

    async def create(
        self, conn: asyncpg.Connection, org_id: UUID, *, status: str, now: datetime
    ) -> SigningKey:
        """Generate a P-256 key, store it encrypted with `status`, and return it."""
        key = jwk.JWK.generate(kty="EC", crv="P-256")
        kid = new_kid(self.plane)
        nonce, ciphertext = self._envelope.seal(
            key.export_private().encode(), associated_data(str(org_id), self.plane, kid)
        )
        await conn.execute(
            SIGNING_KEY_INSERT,
            org_id,
            self.plane,
            kid,
            DEFAULT_ALG,
            json.dumps(_public_jwk(key, kid, DEFAULT_ALG)),
            nonce,
            ciphertext,
            status,
            now,
        )
        signing_key = SigningKey(kid, DEFAULT_ALG, key)
        self._cache[kid] = signing_key
        return signing_key

    async def active(self, conn: asyncpg.Connection, org_id: UUID, *, now: datetime) -> SigningKey:
        """Return the org's active key for this plane, creating the first one if none exists."""
        row = await conn.fetchrow(SIGNING_KEY_ACTIVE, org_id, self.plane)
        if row is None:
            await conn.execute(SIGNING_KEY_LOCK_PLANE, str(org_id), self.plane)
            row = await conn.fetchrow(SIGNING_KEY_ACTIVE, org_id, self.plane)
            if row is None:
                return await self.create(conn, org_id, status="active", now=now)
        return self.decrypt(
            org_id, row["kid"], row["alg"], row["private_key_nonce"], row["private_key_ciphertext"]
        )

    def decrypt(
        self, org_id: UUID, kid: str, alg: str, nonce: bytes, ciphertext: bytes
    ) -> SigningKey:
        cached = self._cache.get(kid)
        if cached is not None:
            return cached
        plaintext = self._envelope.open(
            nonce, ciphertext, associated_data(str(org_id), self.plane, kid)
        )
        signing_key = SigningKey(kid, alg, jwk.JWK.from_json(plaintext.decode()))
        self._cache[kid] = signing_key
        return signing_key


async def published_jwks(
    conn: asyncpg.Connection, org_id: UUID, plane: str, *, now: datetime
) -> dict[str, Any]:
    """Return the JWKS of `plane` for `org_id`: next, active and still-published retired keys."""
    rows = await conn.fetch(SIGNING_KEYS_PUBLISHED, org_id, plane, now)
    keys = []
    for row in rows:
        public = row["public_jwk"]
        keys.append(json.loads(public) if isinstance(public, str) else public)
    return {"keys": keys}
