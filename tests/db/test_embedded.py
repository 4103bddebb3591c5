"""Tests of the embedded PostgreSQL behind `appliance up`, against real server binaries."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from appliance.db import embedded
from appliance.db.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    PostgresNotFoundError,
    SocketPathError,
    UnreachableDirectoryError,
    find_postgres_bin_dir,
)
from appliance.db.pgbinaries import (
    ensure_system_user,
    first_untraversable_directory,
    process_is_running,
    server_user_for_current_process,
)
from tests.pgcluster import wait_for_exit


@contextlib.contextmanager
def short_temporary_dir() -> Iterator[Path]:
    """Yield a short directory under /tmp that the server user can pass through.

    pytest's tmp_path is unsuitable: as root it sits in a mode 0700 directory that
    the unprivileged server user cannot enter, and its path is long.
    """
    root = Path(tempfile.mkdtemp(prefix="appliance-emb-", dir="/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root)


@pytest.fixture
def data_root() -> Iterator[Path]:
    with short_temporary_dir() as root:
        yield root


@pytest.fixture
def postgres(data_root: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_root / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def running_postgres() -> Iterator[EmbeddedPostgres]:
    """A started server shared by the tests that only read from it."""
    with short_temporary_dir() as root:
        server = EmbeddedPostgres(root / "data")
        server.start()
        try:
            yield server
        finally:
            server.stop()


async def fetch_one(dsn: str, query: str) -> object:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def make_fake_bin_dir(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        program = bin_dir / name
        program.write_text("#!/bin/sh\nexit 1\n")
        program.chmod(0o755)
    return bin_dir


async def test_start_serves_superuser_over_socket(
    postgres: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="appliance.db")

    postgres.start()

    dsn = postgres.superuser_dsn("appliance")
    password = postgres.password_file.read_text().strip()
    assert await fetch_one(dsn, "SELECT current_user") == "appliance"
    assert await fetch_one(dsn, "SELECT current_database()") == "appliance"
    assert await fetch_one(dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    # inet_server_addr() is NULL on a Unix-socket connection.
    assert await fetch_one(dsn, "SELECT inet_server_addr()") is None
    assert await fetch_one(dsn, "SHOW listen_addresses") == ""
    assert password not in caplog.text


async def test_files_have_private_modes_and_owners(running_postgres: EmbeddedPostgres) -> None:
    postgres = running_postgres
    server_user = server_user_for_current_process()
    server_uid = server_user.uid if server_user else os.geteuid()
    assert stat.S_IMODE(postgres.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(postgres.password_file.parent.stat().st_mode) == 0o700
    assert postgres.password_file.stat().st_uid == os.geteuid()
    assert stat.S_IMODE(postgres.socket_dir.stat().st_mode) == 0o700
    assert postgres.socket_dir.stat().st_uid == server_uid
    assert postgres.cluster_dir.stat().st_uid == server_uid
    assert postgres.log_file.stat().st_uid == server_uid
    assert first_untraversable_directory(postgres.cluster_dir, server_user) is None


async def test_pg_hba_allows_only_local_scram(running_postgres: EmbeddedPostgres) -> None:
    rules = await fetch_one(
        running_postgres.superuser_dsn(),
        "SELECT array_agg(type || ' ' || array_to_string(database, ',') || ' '"
        " || array_to_string(user_name, ',') || ' ' || auth_method)"
        " FROM pg_hba_file_rules",
    )
    assert rules == ["local all all scram-sha-256"]


async def test_wrong_password_rejected(running_postgres: EmbeddedPostgres) -> None:
    dsn = running_postgres.dsn_for("appliance", "not-the-password", "appliance")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn)


async def test_dsn_for_quotes_role_password(running_postgres: EmbeddedPostgres) -> None:
    postgres = running_postgres
    role = "role_" + secrets.token_hex(4)
    password = "p@ss:w/rd?&=" + secrets.token_hex(8)
    admin = await asyncpg.connect(postgres.superuser_dsn())
    try:
        # CREATE ROLE takes no bind parameters. Both values come from this test.
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        dsn = postgres.dsn_for(role, password, "appliance")
        current_user = await fetch_one(dsn, "SELECT current_user")
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()

    assert current_user == role


async def test_second_start_reuses_data(data_root: Path) -> None:
    first = EmbeddedPostgres(data_root / "data")
    first.start()
    try:
        password = first.password_file.read_text()
        connection = await asyncpg.connect(first.superuser_dsn("appliance"))
        await connection.execute("CREATE TABLE kept (value text)")
        await connection.execute("INSERT INTO kept VALUES ('first run')")
        await connection.close()
    finally:
        first.stop()
    assert not first.is_running()

    second = EmbeddedPostgres(data_root / "data")
    second.start()
    try:
        value = await fetch_one(second.superuser_dsn("appliance"), "SELECT value FROM kept")
    finally:
        second.stop()
    assert value == "first run"
    assert second.password_file.read_text() == password


async def test_start_recovers_after_postmaster_sigkill(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    connection = await asyncpg.connect(postgres.superuser_dsn("appliance"))
    await connection.execute("CREATE TABLE survived (value text)")
    await connection.execute("INSERT INTO survived VALUES ('committed before the kill')")
    await connection.close()
    pid = postgres.postmaster_pid()
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid)

    assert not postgres.is_running()
    assert postgres.postmaster_pid() == pid  # the stale lock file is still there
    postgres.start()
    assert postgres.is_running()
    assert postgres.postmaster_pid() != pid
    value = await fetch_one(postgres.superuser_dsn("appliance"), "SELECT value FROM survived")
    assert value == "committed before the kill"


async def test_stop_closes_socket(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    pid = postgres.postmaster_pid()
    assert pid is not None

    postgres.stop()

    assert not process_is_running(pid)
    assert not postgres.is_running()
    with pytest.raises(FileNotFoundError):  # the socket file is gone
        await asyncpg.connect(postgres.superuser_dsn())
    postgres.stop()  # stopping a stopped server is a no-op


def test_start_rejects_other_major_version(postgres: EmbeddedPostgres) -> None:
    postgres.ensure_initialized()
    (postgres.cluster_dir / "PG_VERSION").write_text("9\n")

    with pytest.raises(EmbeddedPostgresError):
        postgres.start()

    assert not postgres.is_running()


def test_missing_password_file_with_cluster_rejected(postgres: EmbeddedPostgres) -> None:
    postgres.ensure_initialized()
    postgres.password_file.unlink()

    with pytest.raises(EmbeddedPostgresError):
        postgres.ensure_initialized()


def test_interrupted_initialization_is_redone(postgres: EmbeddedPostgres) -> None:
    staging_dir = postgres.data_dir / "postgres.initializing"
    staging_dir.mkdir(parents=True)
    (staging_dir / "PG_VERSION").write_text("leftover\n")

    postgres.ensure_initialized()

    assert not staging_dir.exists()
    assert (postgres.cluster_dir / "PG_VERSION").read_text().strip().isdigit()


def test_unreachable_ancestor_rejected(data_root: Path) -> None:
    # Mode 0600 denies search to everyone but root, and this check runs for the
    # server user, so it applies whether or not the test runs as root.
    closed = data_root / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o600)
    data_dir = closed / "data"
    try:
        with pytest.raises(UnreachableDirectoryError) as raised:
            EmbeddedPostgres(data_dir).ensure_initialized()
    finally:
        closed.chmod(0o700)

    assert raised.value.blocked == closed
    assert raised.value.path == data_dir
    assert str(closed) in str(raised.value)
    assert "--data-dir /var/lib/appliance" in str(raised.value)
    assert not data_dir.exists()


def test_unreachable_bin_dir_rejected(data_root: Path) -> None:
    closed = data_root / "closed"
    bin_dir = make_fake_bin_dir(closed / "bin")
    closed.chmod(0o600)
    try:
        with pytest.raises(UnreachableDirectoryError) as raised:
            EmbeddedPostgres(data_root / "data", bin_dir=bin_dir).ensure_initialized()
    finally:
        closed.chmod(0o700)

    assert raised.value.blocked == closed
    assert raised.value.path == bin_dir


def test_too_long_socket_path_rejected(data_root: Path) -> None:
    data_dir = data_root / ("d" * (embedded.MAX_SOCKET_PATH_BYTES - len(str(data_root))))

    with pytest.raises(SocketPathError) as raised:
        EmbeddedPostgres(data_dir).ensure_initialized()

    assert raised.value.path == data_dir / "run" / embedded.SOCKET_FILE_NAME
    assert not data_dir.exists()


async def test_socket_path_at_limit_accepted(data_root: Path) -> None:
    # "/run/.s.PGSQL.5432" adds 18 bytes to the data directory.
    suffix_length = len("/run/") + len(embedded.SOCKET_FILE_NAME)
    name_length = embedded.MAX_SOCKET_PATH_BYTES - len(str(data_root)) - 1 - suffix_length
    data_dir = data_root / ("d" * name_length)
    server = EmbeddedPostgres(data_dir)
    assert len(os.fsencode(server.socket_dir / embedded.SOCKET_FILE_NAME)) == (
        embedded.MAX_SOCKET_PATH_BYTES
    )

    server.start()
    try:
        assert await fetch_one(server.superuser_dsn(), "SELECT 1") == 1
    finally:
        server.stop()


def test_find_bin_dir_prefers_path(tmp_path: Path) -> None:
    on_path = make_fake_bin_dir(tmp_path / "on-path")
    make_fake_bin_dir(tmp_path / "versions" / "16" / "bin")

    found = find_postgres_bin_dir(
        search_path=str(on_path), patterns=[str(tmp_path / "versions" / "*" / "bin")]
    )

    assert found == on_path


def test_find_bin_dir_picks_newest_version(tmp_path: Path) -> None:
    for version in ("9", "15", "16"):
        make_fake_bin_dir(tmp_path / "versions" / version / "bin")

    found = find_postgres_bin_dir(
        search_path=str(tmp_path / "empty"),
        patterns=[str(tmp_path / "versions" / "*" / "bin")],
        include_pgserver=False,
    )

    assert found == tmp_path / "versions" / "16" / "bin"


def test_find_bin_dir_skips_incomplete_dir(tmp_path: Path) -> None:
    incomplete = make_fake_bin_dir(tmp_path / "versions" / "17" / "bin")
    (incomplete / "postgres").unlink()
    make_fake_bin_dir(tmp_path / "versions" / "15" / "bin")

    found = find_postgres_bin_dir(
        search_path="", patterns=[str(tmp_path / "versions" / "*" / "bin")]
    )

    assert found == tmp_path / "versions" / "15" / "bin"


def test_find_bin_dir_falls_back_to_pgserver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "pgserver"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    make_fake_bin_dir(package / "pginstall" / "bin")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "pgserver", raising=False)

    found = find_postgres_bin_dir(search_path="", patterns=())

    assert found == package / "pginstall" / "bin"


def test_find_bin_dir_missing_names_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes importlib report pgserver as absent.
    monkeypatch.setitem(sys.modules, "pgserver", None)

    with pytest.raises(PostgresNotFoundError) as raised:
        find_postgres_bin_dir(search_path="", patterns=())

    message = str(raised.value)
    assert "apt-get install postgresql" in message
    assert "brew install postgresql@16" in message
    assert "pip install 'appliance[embedded]'" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a system user needs root")
def test_ensure_system_user_creates_account() -> None:
    name = "appl-test-" + secrets.token_hex(3)
    try:
        created = ensure_system_user(name)

        assert created.name == name
        assert created.uid != 0
        assert ensure_system_user(name) == created
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
