"""Tests of the throwaway test cluster: verified TLS, no plain TCP, a stop that stops."""

from __future__ import annotations

import datetime
import functools
import os
import secrets
import signal
import ssl
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.db.pgbinaries import find_postgres_bin_dir, process_is_running
from tests import pgcluster
from tests.pgcluster import PgCluster, PgClusterError, pg_cluster_fixture, wait_for_exit

cluster = pg_cluster_fixture(scope="module")


def write_unrelated_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unrelated CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


async def test_superuser_connects_over_verified_tls(cluster: PgCluster) -> None:
    assert "sslmode=verify-full" in cluster.superuser_dsn
    connection = await asyncpg.connect(cluster.superuser_dsn)
    try:
        uses_tls = await connection.fetchval(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        is_superuser = await connection.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
    finally:
        await connection.close()
    assert uses_tls is True
    assert is_superuser is True


async def test_plain_tcp_connection_rejected(cluster: PgCluster) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError) as raised:
        await asyncpg.connect(
            host=cluster.host,
            port=cluster.port,
            user=pgcluster.SUPERUSER,
            password=cluster.superuser_password,
            database="postgres",
            ssl=False,
        )
    assert raised.value.sqlstate == "28000"


async def test_sslmode_disable_rejected(cluster: PgCluster) -> None:
    dsn = cluster.superuser_dsn.replace("sslmode=verify-full", "sslmode=disable")
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError) as raised:
        await asyncpg.connect(dsn)
    assert raised.value.sqlstate == "28000"


async def test_certificate_from_other_ca_rejected(cluster: PgCluster, tmp_path: Path) -> None:
    other_ca = write_unrelated_ca(tmp_path / "other-ca.crt")
    dsn = cluster.superuser_dsn.replace(str(cluster.ca_file), str(other_ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(dsn)


async def test_wrong_password_rejected(cluster: PgCluster) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(cluster.dsn_for(pgcluster.SUPERUSER, "not-the-password"))


async def test_dsn_for_logs_in_new_role(cluster: PgCluster) -> None:
    role = "role_" + secrets.token_hex(4)
    password = "p@ss:w/rd?" + secrets.token_hex(8)
    admin = await asyncpg.connect(cluster.superuser_dsn)
    try:
        # CREATE ROLE takes no bind parameters. Both values come from this test.
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        connection = await asyncpg.connect(cluster.dsn_for(role, password, "postgres"))
        try:
            current_user = await connection.fetchval("SELECT current_user")
        finally:
            await connection.close()
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
    assert current_user == role


async def test_stop_refuses_connections_until_start() -> None:
    with PgCluster() as cluster:
        port = cluster.port
        pid = cluster.postmaster_pid
        assert pid is not None

        cluster.stop()

        assert not process_is_running(pid)
        assert not cluster.is_running()
        with pytest.raises(ConnectionRefusedError):
            await asyncpg.connect(cluster.superuser_dsn)

        cluster.start()

        assert cluster.port == port
        connection = await asyncpg.connect(cluster.superuser_dsn)
        assert await connection.fetchval("SELECT 1") == 1
        await connection.close()


async def test_start_after_postmaster_sigkill() -> None:
    with PgCluster() as cluster:
        pid = cluster.postmaster_pid
        assert pid is not None

        os.kill(pid, signal.SIGKILL)
        wait_for_exit(pid)
        cluster.start()

        assert cluster.postmaster_pid != pid
        connection = await asyncpg.connect(cluster.superuser_dsn)
        assert await connection.fetchval("SELECT 1") == 1
        await connection.close()


async def test_restart_keeps_data() -> None:
    with PgCluster() as cluster:
        connection = await asyncpg.connect(cluster.superuser_dsn)
        await connection.execute("CREATE TABLE kept (value text)")
        await connection.execute("INSERT INTO kept VALUES ('before restart')")
        await connection.close()

        cluster.restart()

        connection = await asyncpg.connect(cluster.superuser_dsn)
        value = await connection.fetchval("SELECT value FROM kept")
        await connection.close()
    assert value == "before restart"


def test_destroy_stops_server_and_removes_files() -> None:
    cluster = PgCluster()
    cluster.start()
    base_dir = cluster.ca_file.parent
    pid = cluster.postmaster_pid
    assert pid is not None

    cluster.destroy()

    assert not process_is_running(pid)
    assert not base_dir.exists()


def test_missing_binaries_error_says_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty_search = functools.partial(find_postgres_bin_dir, search_path=str(tmp_path), patterns=())
    monkeypatch.setattr(pgcluster, "find_postgres_bin_dir", empty_search)
    cluster = PgCluster()
    with pytest.raises(PgClusterError) as raised:
        cluster.start()
    assert "apt-get install postgresql" in str(raised.value)
    assert cluster.postmaster_pid is None


def test_connection_details_need_started_cluster() -> None:
    cluster = PgCluster()
    with pytest.raises(PgClusterError):
        _ = cluster.superuser_dsn
