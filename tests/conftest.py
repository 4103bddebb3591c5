"""Shared fixtures: a real PostgreSQL with TLS, migrated once per session.

Each test creates its own org (a fresh name), so tests share one database and
row-level security keeps them apart, as it keeps tenants apart in production.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from appliance.audit.chain import AuditEvent, append
from appliance.db.migrate import migrate
from appliance.db.queries.orgs import ORG_INSERT
from appliance.db.tenancy import set_org
from appliance.settings import Plane, PlaneSettings, PoolSettings, Settings
from tests.pgcluster import PgCluster

DATABASE = "appliance_test"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@dataclass(frozen=True)
class Database:
    cluster: PgCluster
    superuser_dsn: str
    role_passwords: dict[Plane, str]
    master_secrets: dict[Plane, bytes]
    secrets_dir: Path

    def dsn(self, plane: Plane) -> str:
        return self.cluster.dsn_for(
            f"appliance_{plane.value}", self.role_passwords[plane], DATABASE
        )

    def plane_settings(self, plane: Plane, *, pool_max: int = 4) -> PlaneSettings:
        return PlaneSettings(
            plane=plane,
            database_url=self.dsn(plane),
            master_secret=self.master_secrets[plane],
            pool=PoolSettings(min_size=1, max_size=pool_max, acquire_timeout=5.0),
        )

    def settings(self, *planes: Plane, public_url: str = "https://appliance.test") -> Settings:
        return Settings(
            planes={plane: self.plane_settings(plane) for plane in planes},
            public_url=public_url,
        )


@pytest.fixture(scope="session")
async def database(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Database:
    admin = await asyncpg.connect(pg_cluster.superuser_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    secrets_dir = tmp_path_factory.mktemp("secrets")
    passwords = {plane: secrets.token_urlsafe(24) for plane in Plane}
    for plane, password in passwords.items():
        (secrets_dir / plane.value).write_text(password)
    superuser_dsn = pg_cluster.dsn_for("postgres", pg_cluster.superuser_password, DATABASE)
    await migrate(superuser_dsn, role_password_dir=secrets_dir)
    return Database(
        cluster=pg_cluster,
        superuser_dsn=superuser_dsn,
        role_passwords=passwords,
        master_secrets={plane: secrets.token_bytes(32) for plane in Plane},
        secrets_dir=secrets_dir,
    )


@pytest.fixture
async def superuser(database: Database) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.superuser_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def create_org(conn: asyncpg.Connection, name: str | None = None) -> tuple[UUID, str]:
    """Create an org with a fresh name and its `org.created` audit event."""
    name = name or f"org-{secrets.token_hex(5)}"
    async with conn.transaction():
        row = await conn.fetchrow(ORG_INSERT, name, name)
        assert row is not None
        await set_org(conn, row["id"])
        await append(
            conn,
            row["id"],
            AuditEvent(
                event_type="org.created",
                plane="admin",
                actor="tests",
                subject=name,
                outcome="success",
                occurred_at=datetime.now(UTC),
            ),
        )
    return row["id"], name


@pytest.fixture
async def org(superuser: asyncpg.Connection) -> tuple[UUID, str]:
    return await create_org(superuser)
