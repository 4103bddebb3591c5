"""Upkeep of the auth plane's tables, run with the key-rotation job."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from appliance.db.queries.oidc import (
    PURGE_ASSERTION_JTIS,
    PURGE_CODES,
    PURGE_GRANTS,
    PURGE_REVOKED_ACCESS_TOKENS,
)

# Expired codes and grants are kept a little longer, so a late replay is
# still recognised as a replay rather than as an unknown code.
REPLAY_MEMORY = timedelta(hours=1)


async def purge_expired(conn: asyncpg.Connection, org_id: UUID, now: datetime) -> None:
    """Delete rows that can no longer matter, in the caller's org-scoped transaction."""
    await conn.execute(PURGE_CODES, org_id, now - REPLAY_MEMORY)
    await conn.execute(PURGE_GRANTS, org_id, now - REPLAY_MEMORY)
    await conn.execute(PURGE_REVOKED_ACCESS_TOKENS, org_id, now)
    await conn.execute(PURGE_ASSERTION_JTIS, org_id, now)
