"""A limit on failed sign-ins per client address, counted in `rate_limit_windows`.

Lockout per user stops guessing one user's password; this limit stops one
address from guessing across many users. Addresses are stored as an HMAC
under a key derived from the plane's master secret, so the table contains no
client IP addresses.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

import asyncpg

from appliance.db.queries.ratelimit import RATE_LIMIT_HITS, RATE_LIMIT_RECORD
from appliance.errors import RateLimited
from appliance.keys.envelope import derive_key

# More failed sign-ins than this from one address within the window are
# rejected before any factor is checked.
MAX_FAILURES = 20
WINDOW_SECONDS = 15 * 60


class SourceLimit:
    """Failed sign-ins of one plane's login, counted per client address under `scope`."""

    def __init__(
        self,
        master_secret: bytes,
        *,
        plane: str,
        scope: str,
        max_failures: int = MAX_FAILURES,
        window_seconds: int = WINDOW_SECONDS,
    ) -> None:
        self._key = derive_key(master_secret, plane=plane, purpose="source-address-hmac")
        self.scope = scope
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    def source_hash(self, address: str) -> str:
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()[:32]

    async def check(self, conn: asyncpg.Connection, source_hash: str, now: datetime) -> None:
        """Raise `RateLimited` when the address has used up its failures in the window."""
        window_start = now - timedelta(seconds=self.window_seconds)
        failures = await conn.fetchval(RATE_LIMIT_HITS, self.scope, source_hash, window_start)
        if failures >= self.max_failures:
            raise RateLimited(
                "too many failed sign-ins from this address; retry later",
                headers={"Retry-After": str(self.window_seconds)},
            )

    async def record_failure(
        self, conn: asyncpg.Connection, source_hash: str, now: datetime
    ) -> None:
        minute = now.replace(second=0, microsecond=0)
        await conn.execute(RATE_LIMIT_RECORD, self.scope, source_hash, minute)
