"""Org-scoped transactions: the tenant is a per-transaction setting.

`org_transaction` sets `appliance.org_id` with `set_config(..., true)`, so the
setting ends with the transaction whatever happens, and row-level security
shows the transaction nothing of another org. A connection is never returned
to the pool while a transaction is still open on it.

Cancellation (a deadline, or a client that went away) terminates the
connection instead of rolling back over it: when the database stalls, a
rollback would wait on the same stalled socket and the caller's deadline
would mean nothing. PostgreSQL rolls back a transaction whose connection is
gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
from asyncpg.transaction import Transaction

from appliance.db.queries.orgs import SET_ORG_CONTEXT

# How long a rollback after an error may take before the connection is
# terminated instead.
ROLLBACK_TIMEOUT_SECONDS = 2.0


@asynccontextmanager
async def connection(
    pool: asyncpg.Pool, *, acquire_timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """Yield a pooled connection; on cancellation terminate it instead of releasing it.

    asyncpg's own release waits until a cancelled query is cancelled on the
    server, which never happens while the network to it stalls. Use this in
    place of `pool.fetchval()` and friends wherever a deadline must hold.
    """
    conn: asyncpg.Connection = await pool.acquire(timeout=acquire_timeout)
    usable = True
    try:
        yield conn
    except asyncio.CancelledError:
        usable = False
        raise
    finally:
        # Terminating a pooled connection hands it back to the pool as closed,
        # and the pool opens a new one when it needs it.
        if not usable or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
        else:
            await pool.release(conn)


@asynccontextmanager
async def transaction(
    pool: asyncpg.Pool, *, acquire_timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection inside a transaction; terminate it if the transaction leaks."""
    async with connection(pool, acquire_timeout=acquire_timeout) as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        except asyncio.CancelledError:
            raise  # `connection` terminates the connection; PostgreSQL rolls back
        except BaseException:
            await _rollback(tx, conn)
            raise
        await tx.commit()


async def _rollback(tx: Transaction, conn: asyncpg.Connection) -> None:
    """Roll back; a rollback that fails or hangs leaves the transaction open, and
    `connection` then terminates the connection."""
    try:
        async with asyncio.timeout(ROLLBACK_TIMEOUT_SECONDS):
            await tx.rollback()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        pass


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
