"""The drill's PostgreSQL: the embedded server, or a database of its own on a server given by DSN.

Both give the drill the same things: a DSN that bypasses row-level security
(to migrate, seed and check the audit chain), a DSN per plane role, and where
a plane's partition proxy forwards to. Only the embedded server can be
stopped. A given server belongs to someone else, so the local driver cuts it
from every plane at the proxies instead.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from appliance.cli.local_db import EMBEDDED_DATABASE
from appliance.db.embedded import SOCKET_FILE_NAME, EmbeddedPostgres
from appliance.db.migrate import DEFAULT_ROLE_PREFIX, plane_role
from appliance.log import log_fields
from appliance.settings import Plane, SettingsError, check_database_url
from chaos.proxy import Address, SocketProxy

log = logging.getLogger("chaos.database")

DEFAULT_PORT = 5432
DROP_ATTEMPTS = 10
CREDENTIAL_PARAMETERS = ("user", "password", "passfile")
INVALID_PORT = (
    "--database-url has an invalid port; if the password contains / ? # or @, "
    "percent-encode them (for example / as %2F)"
)


class DrillDatabaseError(RuntimeError):
    """The drill cannot use the given PostgreSQL; the message gives the reason and the fix."""


def via_socket_dir(dsn: str, socket_dir: Path) -> str:
    """Return `dsn` with its Unix socket directory (`host` query parameter) replaced."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["host"] = str(socket_dir)
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


class EmbeddedDatabase:
    """The embedded server in the drill's data folder, which the drill may stop and start."""

    can_stop = True
    role_prefix = DEFAULT_ROLE_PREFIX

    def __init__(self, root: Path) -> None:
        self.pg = EmbeddedPostgres(root)

    def describe(self) -> str:
        return f"embedded PostgreSQL in {self.pg.cluster_dir}"

    async def create(self, announce: Callable[[str], None]) -> None:
        await asyncio.to_thread(self.pg.ensure_initialized)
        await asyncio.to_thread(self.pg.start)

    async def close(self, *, keep: bool) -> None:
        # The cluster lives in the data folder, which the caller keeps or deletes.
        await asyncio.to_thread(self.pg.stop)

    @property
    def admin_dsn(self) -> str:
        return self.pg.superuser_dsn(EMBEDDED_DATABASE)

    def role_dsn(self, plane: Plane, password: str) -> str:
        return self.pg.dsn_for(plane_role(plane), password, EMBEDDED_DATABASE)

    def new_proxy(self, folder: Path) -> SocketProxy:
        return SocketProxy(folder / SOCKET_FILE_NAME, self.pg.socket_dir / SOCKET_FILE_NAME)

    def through_proxy(self, dsn: str, proxy: SocketProxy) -> str:
        assert proxy.listen_path is not None
        return via_socket_dir(dsn, proxy.listen_path.parent)

    async def stop(self) -> None:
        await asyncio.to_thread(self.pg.stop)

    async def start(self) -> None:
        await asyncio.to_thread(self.pg.start)

    def is_running(self) -> bool:
        return self.pg.is_running()

    def server_pid(self) -> int | None:
        return self.pg.postmaster_pid()


class GivenDatabase:
    """A database and plane roles created for one drill on a server given by DSN.

    Names start with `chaos_<random>`, so nothing on the server is touched but
    what the drill creates, and `close` drops all of it unless asked to keep it.
    The DSN's role needs SUPERUSER, or CREATEDB, CREATEROLE and BYPASSRLS.
    """

    can_stop = False

    def __init__(self, dsn: str) -> None:
        try:
            check_database_url("--database-url", dsn)
        except SettingsError as error:
            raise DrillDatabaseError(str(error)) from None
        self.dsn = dsn
        self.target = _target(dsn)
        self.name = f"chaos_{secrets.token_hex(4)}"
        self.role_prefix = self.name
        self.created = False

    def describe(self) -> str:
        if isinstance(self.target, Path):
            return f"database {self.name} on the PostgreSQL server at {self.target}"
        host, port = self.target
        return f"database {self.name} on the PostgreSQL server at {host}:{port}"

    async def create(self, announce: Callable[[str], None]) -> None:
        """Create the drill's database; `announce` gets its name before anything is created."""
        conn = await self._connect(self.dsn)
        try:
            await check_privileges(conn, ("CREATEDB", "CREATEROLE", "BYPASSRLS"))
            existing_roles = await conn.fetchval(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", f"{self.role_prefix}\\_%"
            )
            if existing_roles:
                raise DrillDatabaseError(
                    f"roles named {self.role_prefix}_* exist already; run the drill again "
                    "for another random name"
                )
            announce(f"creating {self.describe()}; if the drill is killed, {self.cleanup_sql()}")
            await conn.execute(f"CREATE DATABASE {self.name}")
        except asyncpg.PostgresError as error:
            raise DrillDatabaseError(f"cannot create database {self.name}: {error}") from None
        finally:
            await conn.close()
        self.created = True
        log.info("drill database created", extra=log_fields(database=self.name))

    def cleanup_sql(self) -> str:
        roles = ", ".join(plane_role(plane, self.role_prefix) for plane in Plane)
        return f"run DROP DATABASE {self.name} WITH (FORCE); DROP ROLE {roles};"

    async def close(self, *, keep: bool) -> None:
        """Drop the database and roles unless `keep`; raise `DrillDatabaseError` on failure."""
        if not self.created or keep:
            return
        try:
            conn = await self._connect(self.dsn)
            try:
                await self._drop_database(conn)
                for plane in Plane:
                    role = plane_role(plane, self.role_prefix)
                    await conn.execute(f"DROP ROLE IF EXISTS {role}")
            finally:
                await conn.close()
        except (DrillDatabaseError, asyncpg.PostgresError, OSError) as error:
            raise DrillDatabaseError(
                f"cleaning up {self.describe()} failed ({error}); to finish it, "
                f"{self.cleanup_sql()}"
            ) from None
        log.info("drill database dropped", extra=log_fields(database=self.name))

    async def _drop_database(self, conn: asyncpg.Connection) -> None:
        # The planes have stopped, but the server may not have ended their sessions yet,
        # so wait a little before forcing them out of a database that is the drill's own.
        for _ in range(DROP_ATTEMPTS):
            try:
                await conn.execute(f"DROP DATABASE IF EXISTS {self.name}")
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.5)
        await conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    @property
    def admin_dsn(self) -> str:
        return _with_database(self.dsn, self.name)

    def role_dsn(self, plane: Plane, password: str) -> str:
        parts = urlsplit(_with_database(self.dsn, self.name))
        host = parts.netloc.rpartition("@")[2]
        role = plane_role(plane, self.role_prefix)
        # Query parameters would override the credentials in the authority part.
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in CREDENTIAL_PARAMETERS]
        return urlunsplit(
            parts._replace(
                netloc=f"{role}:{quote(password, safe='')}@{host}",
                query=urlencode(query, safe="/"),
            )
        )

    def new_proxy(self, folder: Path) -> SocketProxy:
        if isinstance(self.target, Path):
            return SocketProxy(folder / self.target.name, self.target)
        return SocketProxy(None, self.target)

    def through_proxy(self, dsn: str, proxy: SocketProxy) -> str:
        """Return `dsn` aimed at `proxy`.

        The plane reaches the server as 127.0.0.1, so `verify-full` becomes
        `verify-ca`: the certificate chain is still checked, the host name cannot be.
        """
        if proxy.listen_path is not None:
            return via_socket_dir(dsn, proxy.listen_path.parent)
        parts = urlsplit(dsn)
        credentials = parts.netloc.rpartition("@")[0]
        query = [
            (key, "verify-ca" if key == "sslmode" and value == "verify-full" else value)
            for key, value in parse_qsl(parts.query)
            if key not in ("host", "port")
        ]
        return urlunsplit(
            parts._replace(
                netloc=f"{credentials}@127.0.0.1:{proxy.port}", query=urlencode(query, safe="/")
            )
        )

    async def stop(self) -> None:
        raise DrillDatabaseError("a given PostgreSQL server is not the drill's to stop")

    async def start(self) -> None:
        raise DrillDatabaseError("a given PostgreSQL server is not the drill's to start")

    def is_running(self) -> bool:
        return True

    def server_pid(self) -> int | None:
        return None

    async def _connect(self, dsn: str) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(dsn, timeout=10)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            raise DrillDatabaseError(
                f"cannot connect to the PostgreSQL given by --database-url: {error}"
            ) from None


DrillDatabase = EmbeddedDatabase | GivenDatabase


async def check_privileges(conn: asyncpg.Connection, required: tuple[str, ...]) -> None:
    """Raise unless the connected role is a superuser or has every attribute in `required`.

    BYPASSRLS is needed to seed the drill's org and read its audit chain, and
    CREATEDB and CREATEROLE to create a database and plane roles of its own.
    """
    row = await conn.fetchrow(
        "SELECT current_user AS name, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
        "FROM pg_roles WHERE rolname = current_user"
    )
    assert row is not None
    if row["rolsuper"]:
        return
    attributes = {
        "CREATEDB": row["rolcreatedb"],
        "CREATEROLE": row["rolcreaterole"],
        "BYPASSRLS": row["rolbypassrls"],
    }
    missing = [attribute for attribute in required if not attributes[attribute]]
    if missing:
        raise DrillDatabaseError(
            f"role {row['name']} lacks {', '.join(missing)}: give a role with SUPERUSER, "
            f"or with {', '.join(required)}"
        )


def _target(dsn: str) -> Address:
    """Return where `dsn` connects: a Unix socket path, or a (host, port) pair.

    Errors never quote the DSN: a password with an unescaped `/` or `#` ends up
    in the host or port part.
    """
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    host_port = parts.netloc.rpartition("@")[2]
    if "," in host_port or "," in query.get("host", ""):
        raise DrillDatabaseError("--database-url names several hosts; give the DSN of one server")
    try:
        port_number = parts.port
    except ValueError:
        raise DrillDatabaseError(INVALID_PORT) from None
    host = query.get("host") or parts.hostname or ""
    port_text = query.get("port") or str(port_number or DEFAULT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DrillDatabaseError(INVALID_PORT)
    if not host:
        raise DrillDatabaseError(
            "--database-url names no host; give host:port, or a socket folder as ?host=/path"
        )
    if host.startswith("/"):
        return Path(host) / f".s.PGSQL.{port_text}"
    return host, int(port_text)


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("dbname", "database")]
    return urlunsplit(parts._replace(path=f"/{database}", query=urlencode(query, safe="/")))
