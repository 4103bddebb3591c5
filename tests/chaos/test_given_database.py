"""`appliance chaos run --database-url`: a drill on a PostgreSQL server it does not own.

The session's TLS cluster plays the given server. The drill must create its
own database and roles there, cut the server at the proxies instead of
stopping it, and leave nothing behind.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from appliance.cli.main import cli
from appliance.settings import Plane
from chaos.database import DrillDatabaseError, GivenDatabase
from chaos.proxy import SocketProxy
from chaos.run import run_drill
from chaos.runner import Pace
from tests.pgcluster import PgCluster


async def drill_leftovers(conn: asyncpg.Connection) -> list[str]:
    databases = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'chaos\\_%'")
    roles = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE 'chaos\\_%'")
    return [row[0] for row in [*databases, *roles]]


@pytest.fixture
async def cluster_admin(pg_cluster: PgCluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_cluster.superuser_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def owner_role(conn: asyncpg.Connection, attributes: str) -> tuple[str, str]:
    name = f"owner_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    await conn.execute(f"CREATE ROLE {name} LOGIN {attributes} PASSWORD '{password}'")
    return name, password


async def test_drill_on_given_server_leaves_nothing(
    pg_cluster: PgCluster, cluster_admin: asyncpg.Connection, tmp_path: Path
) -> None:
    # Not a superuser: what a managed PostgreSQL service would grant.
    owner, password = await owner_role(cluster_admin, "CREATEDB CREATEROLE BYPASSRLS")
    try:
        outcome = await run_drill(
            ["postgres-stop-start", "partition-postgres"],
            report_dir=tmp_path / "report",
            database_url=pg_cluster.dsn_for(owner, password),
            pace=Pace.short(),
        )
        leftovers = await drill_leftovers(cluster_admin)
    finally:
        await cluster_admin.execute(f"DROP ROLE {owner}")

    failed = [i for i in outcome.result["invariants"] if not i["passed"]]
    assert failed == [], json.dumps(failed, indent=2)
    assert outcome.result["database"].startswith("database chaos_")
    assert outcome.result["cleanup_error"] is None
    actions = [fault["action"] for fault in outcome.result["faults"]]
    assert "cut PostgreSQL from every plane" in actions
    assert "partition breakglass (stall)" in actions
    degraded = [
        s for s in outcome.result["samples"] if s["stream"] == "breakglass" and s["degraded"]
    ]
    assert degraded, "no break-glass credential was issued while PostgreSQL was cut"
    assert leftovers == []
    assert "against database chaos_" in (tmp_path / "report" / "report.md").read_text()


async def test_keep_data_keeps_database(
    pg_cluster: PgCluster, cluster_admin: asyncpg.Connection, tmp_path: Path
) -> None:
    database = GivenDatabase(pg_cluster.superuser_dsn)
    await database.create(lambda _line: None)
    try:
        await database.close(keep=True)
        assert await drill_leftovers(cluster_admin) == [database.name]
    finally:
        await database.close(keep=False)
    assert await drill_leftovers(cluster_admin) == []


async def test_role_without_bypassrls_rejected(
    pg_cluster: PgCluster, cluster_admin: asyncpg.Connection, tmp_path: Path
) -> None:
    owner, password = await owner_role(cluster_admin, "CREATEDB CREATEROLE")
    try:
        with pytest.raises(DrillDatabaseError, match=f"role {owner} lacks BYPASSRLS"):
            await run_drill(
                ["kill-one-plane"],
                report_dir=tmp_path / "report",
                database_url=pg_cluster.dsn_for(owner, password),
            )
        assert await drill_leftovers(cluster_admin) == []
    finally:
        await cluster_admin.execute(f"DROP ROLE {owner}")
    assert not (tmp_path / "report").exists()


def test_plane_dsn_goes_through_proxy() -> None:
    database = GivenDatabase(
        "postgresql://owner:secret@db.example:6432/postgres"
        "?sslmode=verify-full&sslrootcert=/etc/ca.pem&user=other"
    )
    proxy = SocketProxy(None, database.target)
    proxy.port = 40001

    plane_dsn = database.through_proxy(database.role_dsn(Plane.PIM, "p@ss word"), proxy)

    assert database.target == ("db.example", 6432)
    assert plane_dsn == (
        f"postgresql://{database.role_prefix}_pim:p%40ss%20word@127.0.0.1:40001/{database.name}"
        "?sslmode=verify-ca&sslrootcert=/etc/ca.pem"
    )


def test_socket_dsn_targets_socket_file() -> None:
    database = GivenDatabase("postgresql://owner@/postgres?host=/run/postgresql&port=5433")

    assert database.target == Path("/run/postgresql/.s.PGSQL.5433")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://owner@db.example/postgres", "must use TLS"),
        ("mysql://owner@db.example/x", "is not postgresql://"),
        ("postgresql://owner@a,b/postgres?sslmode=require", "several hosts"),
        ("postgresql:///postgres?sslmode=require", "names no host"),
    ],
)
def test_cli_rejects_unusable_database_url(dsn: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["chaos", "run", "kill-one-plane", "--database-url", dsn])

    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://owner:SECRETPART/rest@db.example:5432/postgres?sslmode=require",
        "postgresql://owner:x@db.example:99999/postgres?sslmode=require",
        "postgresql://owner:x@h1:5432,h2:5432/postgres?sslmode=require",
    ],
)
def test_cli_rejects_dsn_without_quoting_it(dsn: str) -> None:
    result = CliRunner().invoke(cli, ["chaos", "run", "kill-one-plane", "--database-url", dsn])

    assert result.exit_code == 2, result.output
    assert "SECRETPART" not in result.output
    assert "Traceback" not in result.output
    assert "port is invalid" in result.output or "several hosts" in result.output
