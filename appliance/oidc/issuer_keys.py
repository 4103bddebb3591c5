"""Signing and verification keys of each org's issuer, cached in memory.

The active signing key is cached for `ACTIVE_KEY_CACHE_SECONDS`, so the
token endpoint neither queries nor decrypts a key per request. Rotation
accounts for that: a retired key stays published for at least this long
after it stops being active (see `appliance.keys.rotation`). Verification
keys (the published JWKS) are cached the same way and fetched again, at most
once per `REFRESH_INTERVAL_SECONDS`, when a token names an unknown `kid`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from jwcrypto import jwk

from appliance.db.tenancy import org_transaction
from appliance.keys.rotation import RotationPolicy
from appliance.keys.signing import SigningKeyStore, published_jwks
from appliance.oidc.claims import CLOCK_SKEW_SECONDS
from appliance.oidc.jose import Es256Signer, public_key_of

ACTIVE_KEY_CACHE_SECONDS = 30.0
JWKS_CACHE_SECONDS = 30.0
REFRESH_INTERVAL_SECONDS = 1.0
PLANE = "auth"
# Access tokens live at most an hour (a CHECK on oauth_clients), ID tokens five minutes.
MAX_TOKEN_LIFETIME_SECONDS = 3600
# Relying parties may cache the JWKS for this long (its Cache-Control max-age).
JWKS_MAX_AGE_SECONDS = 300

AUTH_ROTATION_POLICY = RotationPolicy(
    rotate_after=timedelta(days=30),
    # A day, not the five-minute max-age, because some relying parties cache
    # key sets far longer than their max-age, and a day costs nothing.
    next_key_lead=timedelta(days=1),
    # The last token a retired key signs is issued up to ACTIVE_KEY_CACHE_SECONDS
    # after retirement (by a replica with a cached key) and lives
    # MAX_TOKEN_LIFETIME_SECONDS, accepted CLOCK_SKEW_SECONDS past its exp.
    retired_overlap=timedelta(
        seconds=MAX_TOKEN_LIFETIME_SECONDS
        + ACTIVE_KEY_CACHE_SECONDS
        + CLOCK_SKEW_SECONDS
        + JWKS_MAX_AGE_SECONDS
    ),
)


class IssuerKeys:
    def __init__(
        self, pool: asyncpg.Pool, master_secret: bytes, *, clock: Callable[[], datetime]
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.store = SigningKeyStore(PLANE, master_secret)
        self._signers: dict[UUID, tuple[float, Es256Signer]] = {}
        self._published: dict[UUID, tuple[float, dict[str, Any], dict[str, Any]]] = {}

    async def signer(self, org_id: UUID) -> Es256Signer:
        cached = self._signers.get(org_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with org_transaction(self.pool, org_id) as conn:
            key = await self.store.active(conn, org_id, now=self.clock())
        signer = Es256Signer.from_jwk(key.kid, key.key)
        self._signers[org_id] = (time.monotonic() + ACTIVE_KEY_CACHE_SECONDS, signer)
        published = self._published.get(org_id)
        if published is not None and key.kid not in published[2]:
            # The key was created just now: publish it before verifying with it.
            del self._published[org_id]
        return signer

    async def _load_published(self, org_id: UUID) -> tuple[float, dict[str, Any], dict[str, Any]]:
        async with org_transaction(self.pool, org_id) as conn:
            document = await published_jwks(conn, org_id, PLANE, now=self.clock())
        keys = {entry["kid"]: public_key_of(jwk.JWK(**entry)) for entry in document["keys"]}
        entry = (time.monotonic(), document, keys)
        self._published[org_id] = entry
        return entry

    async def _published_entry(self, org_id: UUID) -> tuple[float, dict[str, Any], dict[str, Any]]:
        cached = self._published.get(org_id)
        if cached is None or cached[0] + JWKS_CACHE_SECONDS < time.monotonic():
            cached = await self._load_published(org_id)
        return cached

    async def jwks(self, org_id: UUID) -> dict[str, Any]:
        """Return the published JWK Set: next, active and still-published retired keys."""
        return (await self._published_entry(org_id))[1]

    async def verification_keys(self, org_id: UUID, kid: Any = None) -> dict[str, Any]:
        """Public keys by kid; reload once if `kid` is unknown and the cache is not fresh."""
        loaded_at, _, keys = await self._published_entry(org_id)
        if (
            isinstance(kid, str)
            and kid not in keys
            and loaded_at + REFRESH_INTERVAL_SECONDS < time.monotonic()
        ):
            _, _, keys = await self._load_published(org_id)
        return keys

    def forget(self, org_id: UUID) -> None:
        """Drop cached keys of `org_id`, for example after a rotation in this process."""
        self._signers.pop(org_id, None)
        self._published.pop(org_id, None)


def jwks_json(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))
