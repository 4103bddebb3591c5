"""The audit hash chain: appends, verification, tampering, concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest

from appliance.audit.chain import AuditEvent, append
from appliance.audit.verify import ChainBroken, verify_chain
from appliance.db.queries.orgs import SET_ORG_CONTEXT
from appliance.settings import Plane
from tests.conftest import Database


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        event_type="test.event",
        plane="admin",
        actor="tester",
        subject=f"subject-{n}",
        outcome="success",
        occurred_at=datetime.now(UTC),
        data={"n": n, "text": "ünïcode ✓"},
    )


async def _append_as_plane(database: Database, org_id: UUID, count: int) -> None:
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        for n in range(count):
            async with conn.transaction():
                await conn.execute(SET_ORG_CONTEXT, str(org_id))
                await append(conn, org_id, _event(n))
    finally:
        await conn.close()


async def _verify(conn: asyncpg.Connection, org_id: UUID) -> int:
    async with conn.transaction():
        await conn.execute(SET_ORG_CONTEXT, str(org_id))
        return (await verify_chain(conn, org_id)).events


async def test_appended_events_verify(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await _append_as_plane(database, org_id, 5)
    assert await _verify(superuser, org_id) == 6  # org.created plus five


async def test_append_outside_transaction_is_refused(
    superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        await append(superuser, org[0], _event(0))


async def test_altered_event_breaks_chain(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await _append_as_plane(database, org_id, 3)
    await superuser.execute(
        "UPDATE audit_events SET subject = 'someone-else' WHERE org_id = $1 AND seq = 3", org_id
    )
    with pytest.raises(ChainBroken) as broken:
        await _verify(superuser, org_id)
    assert broken.value.seq == 3


async def test_deleted_event_breaks_chain(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await _append_as_plane(database, org_id, 3)
    await superuser.execute("DELETE FROM audit_events WHERE org_id = $1 AND seq = 2", org_id)
    with pytest.raises(ChainBroken) as broken:
        await _verify(superuser, org_id)
    assert broken.value.seq == 2


async def test_truncated_tail_breaks_chain(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await _append_as_plane(database, org_id, 3)
    await superuser.execute("DELETE FROM audit_events WHERE org_id = $1 AND seq = 4", org_id)
    with pytest.raises(ChainBroken):
        await _verify(superuser, org_id)


async def test_concurrent_appends_do_not_fork(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await asyncio.gather(*(_append_as_plane(database, org_id, 5) for _ in range(4)))
    assert await _verify(superuser, org_id) == 21
