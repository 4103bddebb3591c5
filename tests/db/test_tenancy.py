"""Row-level security: a query without an org filter sees nothing of another org."""

from __future__ import annotations

import asyncpg
import pytest

from appliance.db.queries.orgs import SET_ORG_CONTEXT
from appliance.settings import Plane
from tests.conftest import Database, create_org


async def test_unfiltered_query_sees_only_own_org(
    database: Database, superuser: asyncpg.Connection
) -> None:
    org_a, _ = await create_org(superuser)
    org_b, _ = await create_org(superuser)
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_a))
            # Deliberately no WHERE org_id = ...: row-level security must filter.
            orgs_seen = {
                row["org_id"] for row in await conn.fetch("SELECT org_id FROM audit_events")
            }
        assert orgs_seen == {org_a}
        assert org_b not in orgs_seen
    finally:
        await conn.close()


async def test_no_org_context_sees_nothing(
    database: Database, superuser: asyncpg.Connection
) -> None:
    await create_org(superuser)
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 0
        assert await conn.fetchval("SELECT count(*) FROM breakglass_accounts") == 0
    finally:
        await conn.close()


async def test_org_context_ends_with_transaction(
    database: Database, superuser: asyncpg.Connection
) -> None:
    org_a, _ = await create_org(superuser)
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_a))
            assert await conn.fetchval("SELECT count(*) FROM audit_events") >= 1
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 0
    finally:
        await conn.close()


async def test_insert_into_other_org_is_rejected(
    database: Database, superuser: asyncpg.Connection
) -> None:
    org_a, _ = await create_org(superuser)
    org_b, _ = await create_org(superuser)
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_a))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, $2)",
                    org_b,
                    bytes(32),
                )
    finally:
        await conn.close()
