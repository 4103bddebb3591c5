"""Org-scoped transactions: the tenant is a per-transaction setting.

`org_transaction` sets `appliance.org_id` with `set_config(..., true)`, so the
setting ends with the transaction whatever happens, and row-level security
shows the transaction nothing of another org. A connection is never returned
to the pool while a transaction is still open on it: if the transaction
cannot be closed (for example, the request was cancelled mid-rollback), the
connection is terminated instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from appliance.db.queries.orgs import SET_ORG_CONTEXT


@asynccontextmanager
async def transaction(
    pool: asyncpg.Pool, *, acquire_timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection inside a transaction; terminate it if the transaction leaks."""
    conn: asyncpg.Connection = await pool.acquire(timeout=acquire_timeout)
    try:
        async with conn.transaction():
            yield conn
    finally:
        if conn.is_in_transaction() or conn.is_closed():
            conn.terminate()
        await pool.release(conn)


@asynccontextmanager
async def org_transaction(
    pool: asyncpg.Pool, org_id: UUID, *, acquire_timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection in a transaction scoped to `org_id` by row-level security."""
    async with transaction(pool, acquire_timeout=acquire_timeout) as conn:
        await conn.execute(SET_ORG_CONTEXT, str(org_id))
        yield conn


async def set_org(conn: asyncpg.Connection, org_id: UUID) -> None:
    """Scope the current transaction of `conn` to `org_id`."""
    await conn.execute(SET_ORG_CONTEXT, str(org_id))
