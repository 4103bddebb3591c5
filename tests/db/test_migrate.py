"""Migrations: idempotent, safe when run concurrently, append-only."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from appliance.db import migrate as migrate_module
from appliance.db.migrate import Migration, MigrationError, load_migrations, migrate
from tests.conftest import Database


async def test_second_run_applies_nothing(database: Database) -> None:
    assert await migrate(database.superuser_dsn) == []


async def test_concurrent_runs_apply_each_file_once(database: Database) -> None:
    admin = await asyncpg.connect(database.superuser_dsn)
    try:
        await admin.execute("DROP DATABASE IF EXISTS migrate_race")
        await admin.execute("CREATE DATABASE migrate_race")
    finally:
        await admin.close()
    dsn = database.superuser_dsn.replace("/appliance_test?", "/migrate_race?")
    results = await asyncio.gather(*(migrate(dsn) for _ in range(4)))
    applied = sorted(v for result in results for v in result)
    assert applied == [m.version for m in load_migrations()]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert rows == len(load_migrations())


async def test_changed_applied_migration_is_rejected(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = load_migrations()
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in original]
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: edited)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(database.superuser_dsn)


async def test_plane_roles_have_connection_limits(superuser: asyncpg.Connection) -> None:
    rows = await superuser.fetch(
        "SELECT rolname, rolconnlimit, rolsuper, rolcreaterole FROM pg_roles "
        "WHERE rolname LIKE 'appliance\\_%' ORDER BY rolname"
    )
    limits = {row["rolname"]: row["rolconnlimit"] for row in rows}
    assert limits == {
        "appliance_admin": 15,
        "appliance_auth": 60,
        "appliance_breakglass": 15,
        "appliance_pim": 20,
    }
    assert not any(row["rolsuper"] or row["rolcreaterole"] for row in rows)


async def test_plane_role_cannot_change_schema(database: Database) -> None:
    from appliance.settings import Plane

    conn = await asyncpg.connect(database.dsn(Plane.AUTH))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_events")
    finally:
        await conn.close()
