"""The auth plane's shared state: pool, clock, caches and per-plane derived keys."""

from __future__ import annotations

import re
import time
from datetime import datetime
from uuid import UUID

import asyncpg

from appliance.clock import Clock
from appliance.db.queries.orgs import ORG_BY_NAME
from appliance.errors import NotFound
from appliance.identity.source_limit import SourceLimit
from appliance.keys.envelope import derive_key
from appliance.keys.sealing import sealing_private_key
from appliance.oidc.clients import ClientRegistry
from appliance.oidc.issuer_keys import IssuerKeys

PLANE = "auth"
ORG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Org ids never change for a name while the org exists; the cache only
# delays noticing a deleted org.
ORG_CACHE_SECONDS = 60.0


class OidcService:
    def __init__(
        self, pool: asyncpg.Pool, master_secret: bytes, *, public_url: str, clock: Clock
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.clients = ClientRegistry(pool)
        self.keys = IssuerKeys(pool, master_secret, clock=clock)
        self.seal_key = sealing_private_key(master_secret, PLANE)
        self.source_limit = SourceLimit(master_secret, plane=PLANE, scope="oidc-login-source")
        self.csrf_key = derive_key(master_secret, plane=PLANE, purpose="login-csrf")
        self._orgs: dict[str, tuple[float, UUID]] = {}

    @property
    def seal_public_key(self) -> bytes:
        return bytes(self.seal_key.public_key)

    def now(self) -> datetime:
        return self.clock()

    def issuer(self, org_name: str) -> str:
        return f"{self.public_url}/o/{org_name}"

    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    async def org_id(self, org_name: str) -> UUID:
        """Resolve an org name from a URL, or raise `NotFound`."""
        if not ORG_PATTERN.match(org_name):
            raise NotFound(f"org {org_name[:64]!r} not found")
        cached = self._orgs.get(org_name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = await self.pool.fetchrow(ORG_BY_NAME, org_name)
        if row is None:
            raise NotFound(f"org {org_name!r} not found")
        org_id: UUID = row["id"]
        self._orgs[org_name] = (time.monotonic() + ORG_CACHE_SECONDS, org_id)
        return org_id
