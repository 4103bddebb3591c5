"""A throwaway PostgreSQL cluster for the test suite.

The cluster serves TLS on 127.0.0.1 only, with a certificate from a CA made for
this cluster alone, and rejects plain TCP, so tests connect the way production
planes must (``sslmode=verify-full``). Durability is switched off for speed
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` are off): never point
this at data you want to keep.

Use it as a context manager, or through ``pg_cluster_fixture()`` in a conftest::

    pg_cluster = pg_cluster_fixture()        # a session-scoped fixture named pg_cluster

    async def test_something(pg_cluster: PgCluster) -> None:
        connection = await asyncpg.connect(pg_cluster.superuser_dsn)

There is no skip when PostgreSQL is missing: ``start()`` raises ``PgClusterError``
with the package to install.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote, urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.db.pgbinaries import (
    EmbeddedPostgresError,
    PostgresCommandError,
    ServerUser,
    chown_to,
    find_postgres_bin_dir,
    process_is_running,
    read_log_tail,
    read_postmaster_pid,
    remove_stale_lock_files,
    run_initdb,
    run_server_command,
    server_user_for_current_process,
)

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_ATTEMPTS = 3  # each attempt after the first picks a new port
COMMAND_TIMEOUT_SECONDS = 30.0

# Unsafe for real data, fast for tests. Each entry is one postgresql.conf setting.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "'32MB'",
}


class PgClusterError(RuntimeError):
    """The test cluster could not be created, started or stopped."""


class PgCluster:
    """A PostgreSQL cluster in a fresh temporary directory, removed by ``destroy()``.

    ``settings`` adds or overrides postgresql.conf lines, with values written as
    they appear in the file (strings quoted).
    """

    def __init__(
        self, *, bin_dir: Path | None = None, settings: Mapping[str, str] | None = None
    ) -> None:
        self._bin_dir = bin_dir
        self._settings = {**FAST_SETTINGS, **(settings or {})}
        self._password = secrets.token_urlsafe(24)
        self._server_user: ServerUser | None = None
        self._base_dir: Path | None = None
        self._port: int | None = None

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.destroy()

    # Connection details

    @property
    def host(self) -> str:
        """Address the server listens on, which the certificate also names."""
        return HOST

    @property
    def port(self) -> int:
        """TCP port of the server, fixed from the first start on."""
        if self._port is None:
            raise PgClusterError("The cluster has not been started yet.")
        return self._port

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the server certificate."""
        return self._require_base_dir() / "ca.crt"

    @property
    def superuser_password(self) -> str:
        return self._password

    @property
    def superuser_dsn(self) -> str:
        """DSN that logs in as the superuser over TLS with ``sslmode=verify-full``."""
        return self.dsn_for(SUPERUSER, self._password)

    def dsn_for(self, user: str, password: str, database: str | None = None) -> str:
        """Return a TLS DSN (``sslmode=verify-full``) for ``user`` on ``database``.

        ``database`` defaults to ``postgres``.
        """
        query = urlencode(
            {"sslmode": "verify-full", "sslrootcert": str(self.ca_file)}, safe="/", quote_via=quote
        )
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database or 'postgres', safe='')}?{query}"
        )

    # Lifecycle

    def start(self) -> None:
        """Create the cluster on first use, then start the server and wait until it
        accepts connections. A running server is left alone.

        Raises:
            PgClusterError: PostgreSQL is not installed, or the server did not start;
                the message contains the end of the server log.
        """
        if self._base_dir is None:
            self._create()
        if self.is_running():
            return
        remove_stale_lock_files(self._data_dir, self._socket_lock_file)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._pg_ctl(
                    "start", "--log", str(self.log_file), "--wait", "-o", f"-p {self.port}"
                )
            except PostgresCommandError as exc:
                # Another process may take the port between _free_port() and the
                # server's bind().
                if "Address already in use" in self.log_tail() and attempt < START_ATTEMPTS:
                    logger.warning("Port %s is taken, retrying on another port", self._port)
                    self._port = _free_port()
                    remove_stale_lock_files(self._data_dir, self._socket_lock_file)
                    continue
                raise PgClusterError(
                    f"PostgreSQL failed to start: {exc}\nLast lines of {self.log_file}:\n"
                    + self.log_tail()
                ) from exc
            return

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server with ``pg_ctl stop -m MODE`` and wait until it has exited.

        Raises:
            PgClusterError: ``pg_ctl`` failed or the postmaster is still running.
        """
        if not self.is_running():
            return
        pid = self.postmaster_pid
        try:
            self._pg_ctl("stop", "--mode", mode, "--wait")
        except PostgresCommandError as exc:
            raise PgClusterError(f"Stopping PostgreSQL failed: {exc}") from exc
        if pid is not None and process_is_running(pid):
            raise PgClusterError(f"The postmaster (PID {pid}) is still running after stop.")

    def restart(self) -> None:
        """Stop and start the server on the same port, keeping its data."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server and remove every file of the cluster."""
        if self._base_dir is None:
            return
        try:
            self.stop()
        except PgClusterError:
            logger.exception("Fast shutdown failed, stopping the test cluster immediately")
            self.stop("immediate")
        finally:
            shutil.rmtree(self._base_dir)
            self._base_dir = None

    def is_running(self) -> bool:
        """Return whether the postmaster named in ``postmaster.pid`` is running."""
        pid = self.postmaster_pid
        return pid is not None and process_is_running(pid)

    @property
    def postmaster_pid(self) -> int | None:
        """PID from ``postmaster.pid``, or None when the server is stopped."""
        if self._base_dir is None:
            return None
        return read_postmaster_pid(self._data_dir)

    @property
    def log_file(self) -> Path:
        return self._require_base_dir() / "server.log"

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the server log, or an empty string."""
        return read_log_tail(self.log_file, lines)

    # Creation

    @property
    def _data_dir(self) -> Path:
        return self._require_base_dir() / "data"

    @property
    def _socket_lock_file(self) -> Path:
        return self._require_base_dir() / f".s.PGSQL.{self.port}.lock"

    def _require_base_dir(self) -> Path:
        if self._base_dir is None:
            raise PgClusterError("The cluster has not been started yet.")
        return self._base_dir

    def _create(self) -> None:
        try:
            self._bin_dir = self._bin_dir or find_postgres_bin_dir(include_pgserver=False)
        except EmbeddedPostgresError as exc:
            raise PgClusterError(
                f"{exc} The test suite needs PostgreSQL server binaries built with "
                "OpenSSL; the pgserver wheel has no TLS support."
            ) from exc
        self._server_user = server_user_for_current_process()
        self._port = _free_port()

        # /tmp rather than $TMPDIR: the server user can pass through /tmp (mode
        # 1777), and the path stays short enough for the Unix socket. mkdtemp
        # makes the directory with mode 0700, and the server user then owns it.
        base_dir = Path(tempfile.mkdtemp(prefix="appliance-pg-", dir="/tmp"))
        self._base_dir = base_dir
        try:
            chown_to(base_dir, self._server_user)
            self._initdb()
            self._write_tls_files()
            self._write_configuration()
        except BaseException:
            shutil.rmtree(base_dir)
            self._base_dir = None
            raise

    def _initdb(self) -> None:
        password_file = self._require_base_dir() / "superuser-password"
        password_file.write_text(self._password + "\n", encoding="ascii")
        password_file.chmod(0o600)
        chown_to(password_file, self._server_user)
        try:
            assert self._bin_dir is not None
            run_initdb(
                self._bin_dir,
                self._data_dir,
                self._server_user,
                superuser=SUPERUSER,
                password_file=password_file,
                timeout=COMMAND_TIMEOUT_SECONDS,
                sync=False,
            )
        except PostgresCommandError as exc:
            raise PgClusterError(f"initdb failed: {exc}") from exc
        finally:
            password_file.unlink()

    def _write_tls_files(self) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_certificate = _issue_ca_certificate(ca_key)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_certificate = _issue_server_certificate(server_key, ca_key, ca_certificate)

        self.ca_file.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
        # PostgreSQL rejects a key file that its owner's group or others may read.
        for name, content, mode in (
            ("server.crt", server_certificate.public_bytes(serialization.Encoding.PEM), 0o644),
            ("server.key", _private_key_pem(server_key), 0o600),
        ):
            path = self._data_dir / name
            path.write_bytes(content)
            path.chmod(mode)
            chown_to(path, self._server_user)

    def _write_configuration(self) -> None:
        settings = {
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self._require_base_dir()}'",
            "ssl": "on",
            "ssl_cert_file": "'server.crt'",
            "ssl_key_file": "'server.key'",
            "password_encryption": "'scram-sha-256'",
            **self._settings,
        }
        # Appending to the files that initdb wrote keeps their owner and mode.
        with (self._data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# Test cluster settings\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        # TCP clients must use TLS: without a `host` line, a plain connection finds
        # no matching entry and is rejected.
        with (self._data_dir / "pg_hba.conf").open("w", encoding="utf-8") as hba:
            hba.write(
                "# TYPE  DATABASE  USER      ADDRESS       METHOD\n"
                f"local   all       {SUPERUSER}                 scram-sha-256\n"
                f"hostssl all       all       {HOST}/32  scram-sha-256\n"
            )

    def _bin_path(self, program: str) -> Path:
        assert self._bin_dir is not None
        return self._bin_dir / program

    def _pg_ctl(self, action: str, *options: str) -> None:
        run_server_command(
            [
                str(self._bin_path("pg_ctl")),
                action,
                "--pgdata",
                str(self._data_dir),
                "--timeout",
                str(int(COMMAND_TIMEOUT_SECONDS)),
                *options,
            ],
            self._server_user,
            timeout=COMMAND_TIMEOUT_SECONDS + 5,
        )


def pg_cluster_fixture(
    scope: Literal["session", "package", "module", "class", "function"] = "session",
) -> Callable[[], Iterator[PgCluster]]:
    """Return a pytest fixture that yields a started ``PgCluster`` and destroys it after.

    Assign the result to a module-level name in a conftest; that name becomes
    the fixture name.
    """

    @pytest.fixture(scope=scope)
    def fixture() -> Iterator[PgCluster]:
        with PgCluster() as cluster:
            yield cluster

    return fixture


def wait_for_exit(pid: int, timeout: float = 10.0) -> None:
    """Wait until process ``pid`` has exited, for example after a SIGKILL.

    Raises:
        PgClusterError: the process is still running after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while process_is_running(pid):
        if time.monotonic() > deadline:
            raise PgClusterError(f"PID {pid} is still running after {timeout:g} seconds.")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _issue_ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "appliance test cluster CA")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
