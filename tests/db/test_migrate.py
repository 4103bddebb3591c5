"""Migrations: idempotent, safe when run concurrently, append-only."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
import pytest

from appliance.db import migrate as migrate_module
from appliance.db.migrate import Migration, MigrationError, load_migrations, migrate
from appliance.settings import Plane
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


def test_role_prefix_renames_every_plane_role() -> None:
    for migration in load_migrations():
        renamed = migration.sql_for("drill")
        for plane in ("auth", "admin", "pim", "breakglass"):
            assert f"appliance_{plane}" not in renamed, migration.name
            assert renamed.count(f"drill_{plane}") == migration.sql.count(f"appliance_{plane}")
        assert "'appliance_'" not in renamed, migration.name
        assert renamed.count("appliance_current_org") == migration.sql.count(
            "appliance_current_org"
        )


@pytest.mark.parametrize(
    "prefix", ["", "Upper", "9lives", "has-dash", "x" * 49, "a;DROP", "pg_reserved"]
)
async def test_invalid_role_prefix_rejected(database: Database, prefix: str) -> None:
    with pytest.raises(MigrationError, match="role prefix"):
        await migrate(database.superuser_dsn, role_prefix=prefix)


async def test_existing_database_keeps_its_prefix(database: Database) -> None:
    with pytest.raises(MigrationError, match="named appliance_<plane>"):
        await migrate(database.superuser_dsn, role_prefix="other")


async def test_prefixed_roles_serve_their_own_database(database: Database, tmp_path: Path) -> None:
    prefix = f"mig_{secrets.token_hex(3)}"
    name = f"{prefix}_db"
    passwords = tmp_path / "passwords"
    passwords.mkdir()
    (passwords / "breakglass").write_text("breakglass-password-1234")
    admin = await asyncpg.connect(database.superuser_dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = database.superuser_dsn.replace("/appliance_test?", f"/{name}?")
    try:
        applied = await migrate(dsn, role_password_dir=passwords, role_prefix=prefix)
        assert applied == [m.version for m in load_migrations()]
        limits = dict(
            await admin.fetch(
                "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname LIKE $1",
                f"{prefix}\\_%",
            )
        )
        assert limits == {
            f"{prefix}_admin": 15,
            f"{prefix}_auth": 60,
            f"{prefix}_breakglass": 15,
            f"{prefix}_pim": 20,
        }

        plane = await asyncpg.connect(
            database.cluster.dsn_for(f"{prefix}_breakglass", "breakglass-password-1234", name)
        )
        try:
            assert await plane.fetchval("SELECT count(*) FROM orgs") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await plane.execute("DELETE FROM audit_events")
        finally:
            await plane.close()

        with pytest.raises(MigrationError, match=f"named {prefix}_<plane>"):
            await migrate(dsn)
        assert await migrate(dsn, role_prefix=prefix) == []
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        for plane_name in ("auth", "admin", "pim", "breakglass"):
            await admin.execute(f"DROP ROLE IF EXISTS {prefix}_{plane_name}")
        await admin.close()


async def test_unrecorded_prefix_means_default(database: Database) -> None:
    name = f"mig_{secrets.token_hex(3)}_db"
    admin = await asyncpg.connect(database.superuser_dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = database.superuser_dsn.replace("/appliance_test?", f"/{name}?")
    try:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP TABLE schema_role_prefix")
        finally:
            await conn.close()
        with pytest.raises(MigrationError, match="named appliance_<plane>"):
            await migrate(dsn, role_prefix="renamed")
        assert await migrate(dsn) == []
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


async def test_failed_first_run_records_no_prefix(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"mig_{secrets.token_hex(3)}_db"
    admin = await asyncpg.connect(database.superuser_dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = database.superuser_dsn.replace("/appliance_test?", f"/{name}?")
    try:
        broken = [Migration(1, "broken", "SELECT * FROM no_such_table")]
        with monkeypatch.context() as patch:
            patch.setattr(migrate_module, "load_migrations", lambda: broken)
            with pytest.raises(MigrationError, match=r"0001_broken\.sql failed"):
                await migrate(dsn, role_prefix="typo")

        applied = await migrate(dsn)

        assert applied == [m.version for m in load_migrations()]
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


async def test_shared_roles_keep_their_passwords(database: Database, tmp_path: Path) -> None:
    name = f"mig_{secrets.token_hex(3)}_db"
    passwords = tmp_path / "passwords"
    passwords.mkdir()
    (passwords / "auth").write_text("another-password-1234")
    admin = await asyncpg.connect(database.superuser_dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = database.superuser_dsn.replace("/appliance_test?", f"/{name}?")
    try:
        with pytest.raises(MigrationError, match=r"also serve database .*appliance_test"):
            await migrate(dsn, role_password_dir=passwords)
        assert await migrate(dsn) == [m.version for m in load_migrations()]
        plane = await asyncpg.connect(database.dsn(Plane.AUTH))
        await plane.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
