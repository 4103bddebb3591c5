"""The embedded PostgreSQL server behind ``appliance up`` (development and demos).

The server lives in a private data directory and listens on a Unix socket only::

    <data_dir>/postgres/                  the cluster (PGDATA), owned by the server user
    <data_dir>/run/.s.PGSQL.5432          the socket, in a directory only the server user can enter
    <data_dir>/logs/postgres.log          the server log, owned by the server user
    <data_dir>/secrets/postgres-superuser the superuser password (mode 0600)

The superuser is ``appliance`` and the database ``appliance`` exists from the
first start. ``pg_hba.conf`` allows only ``local all all scram-sha-256``, so every
connection needs the password even over the socket. When this process is root, the
server runs as an unprivileged system user (see ``appliance.db.pgbinaries``).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path
from urllib.parse import quote

from appliance.db.pgbinaries import (
    EmbeddedPostgresError,
    PostgresCommandError,
    PostgresNotFoundError,
    ServerUser,
    chown_to,
    find_postgres_bin_dir,
    first_untraversable_directory,
    process_is_running,
    read_log_tail,
    read_postmaster_pid,
    remove_stale_lock_files,
    run_initdb,
    run_server_command,
    server_user_for_current_process,
)

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "PostgresNotFoundError",
    "SocketPathError",
    "UnreachableDirectoryError",
    "find_postgres_bin_dir",
]

logger = logging.getLogger(__name__)

SUPERUSER = "appliance"
DATABASE = "appliance"
# No TCP listener is opened, but the port number still names the socket file.
PORT = 5432
SOCKET_FILE_NAME = f".s.PGSQL.{PORT}"
# struct sockaddr_un.sun_path is 108 bytes on Linux and 104 on macOS and the BSDs,
# including the terminating NUL. PostgreSQL fails to start with a longer socket path.
MAX_SOCKET_PATH_BYTES = 107 if sys.platform.startswith("linux") else 103
DEFAULT_TIMEOUT_SECONDS = 60.0
LOG_TAIL_LINES = 20

# Characters that would need escaping in postgresql.conf or in the comma-separated
# unix_socket_directories list.
_UNSAFE_PATH_CHARACTERS = re.compile(r"[,'\"\\\x00-\x1f]")


class SocketPathError(EmbeddedPostgresError):
    """The Unix socket path is too long, or contains characters postgresql.conf cannot take."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class UnreachableDirectoryError(EmbeddedPostgresError):
    """The server user cannot search a directory on the way to its files or programs."""

    def __init__(self, message: str, *, path: Path, blocked: Path) -> None:
        super().__init__(message)
        self.path = path
        self.blocked = blocked


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir`` that serves a Unix socket and no TCP port.

    ``bin_dir`` defaults to ``find_postgres_bin_dir()``. ``timeout`` bounds each
    server command in seconds. Start-up after a crash replays the WAL, which can be slow.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        bin_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.data_dir = Path(os.path.abspath(data_dir))
        self.cluster_dir = self.data_dir / "postgres"
        self.socket_dir = self.data_dir / "run"
        self.log_file = self.data_dir / "logs" / "postgres.log"
        self.password_file = self.data_dir / "secrets" / "postgres-superuser"
        self.timeout = timeout
        self._bin_dir = bin_dir
        self._server_user: ServerUser | None = None
        self._server_user_resolved = False

    @property
    def bin_dir(self) -> Path:
        """Directory of the PostgreSQL programs this instance runs."""
        if self._bin_dir is None:
            self._bin_dir = find_postgres_bin_dir()
        return self._bin_dir

    @property
    def server_user(self) -> ServerUser | None:
        """System user that runs the server, or None for the current user."""
        if not self._server_user_resolved:
            self._server_user = server_user_for_current_process()
            self._server_user_resolved = True
        return self._server_user

    # Set-up

    def ensure_initialized(self) -> None:
        """Create the directories, the superuser password and the cluster if missing.

        Safe to call on every start: an initialized cluster is left as it is.

        Raises:
            SocketPathError: the socket path is too long or contains unsafe characters.
            UnreachableDirectoryError: the server user cannot reach the data directory
                or the PostgreSQL programs.
            EmbeddedPostgresError: ``initdb`` failed, or the directory is in a state
                that needs a person to look at it.
        """
        self._check_socket_path()
        self._check_reachable(
            self.data_dir,
            self.data_dir.parent,
            "data directory",
            "Choose a data directory that user can reach, for example "
            "--data-dir /var/lib/appliance.",
        )
        self._check_reachable(
            self.bin_dir,
            self.bin_dir,
            "PostgreSQL binaries",
            "Install PostgreSQL system-wide or into a directory that user can reach.",
        )
        self._prepare_directories()
        password = self._load_or_create_password()

        if (self.cluster_dir / "PG_VERSION").exists():
            logger.debug("PostgreSQL cluster in %s is already initialized", self.cluster_dir)
            return
        if self.cluster_dir.exists():
            if any(self.cluster_dir.iterdir()):
                raise EmbeddedPostgresError(
                    f"{self.cluster_dir} exists but is not a PostgreSQL cluster "
                    "(PG_VERSION is missing). Move it away or choose another data directory."
                )
            self.cluster_dir.rmdir()
        self._initialize_cluster(password)

    def _check_socket_path(self) -> None:
        socket_path = self.socket_dir / SOCKET_FILE_NAME
        length = len(os.fsencode(socket_path))
        if length > MAX_SOCKET_PATH_BYTES:
            raise SocketPathError(
                f"The PostgreSQL socket path {socket_path} is {length} bytes long, but Unix "
                f"socket paths are limited to {MAX_SOCKET_PATH_BYTES} bytes here. "
                "Choose a shorter --data-dir.",
                path=socket_path,
            )
        if _UNSAFE_PATH_CHARACTERS.search(str(self.socket_dir)):
            raise SocketPathError(
                f"The data directory {self.data_dir} contains a comma, quote, backslash or "
                "control character, which unix_socket_directories in postgresql.conf "
                "cannot take. Choose another --data-dir.",
                path=socket_path,
            )

    def _check_reachable(
        self, target: Path, last_checked: Path, description: str, suggestion: str
    ) -> None:
        blocked = first_untraversable_directory(last_checked, self.server_user)
        if blocked is None:
            return
        user = self.server_user.name if self.server_user else "the current user"
        raise UnreachableDirectoryError(
            f"PostgreSQL runs as {user}, who cannot enter {blocked} on the way to the "
            f"{description} {target}. {suggestion}",
            path=target,
            blocked=blocked,
        )

    def _prepare_directories(self) -> None:
        user = self.server_user
        log_dir = self.log_file.parent
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_dir.mkdir(exist_ok=True, mode=0o700)
        if user is not None:
            self._grant_search_to_server_user(self.data_dir, user)
            self._grant_search_to_server_user(log_dir, user)

        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        chown_to(self.socket_dir, user)
        self.socket_dir.chmod(0o700)

        # The log directory is shared with the planes' logs, so the server user
        # gets only its own file, created here because it cannot create files there.
        os.close(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        chown_to(self.log_file, user)

        secrets_dir = self.password_file.parent
        secrets_dir.mkdir(exist_ok=True, mode=0o700)
        secrets_dir.chmod(0o700)

    def _grant_search_to_server_user(self, directory: Path, user: ServerUser) -> None:
        """Let ``user`` pass through a root-owned ``directory``, without listing it."""
        if first_untraversable_directory(directory, user) is None:
            return
        info = directory.stat()
        if info.st_uid != os.geteuid():
            raise UnreachableDirectoryError(
                f"PostgreSQL runs as {user.name}, who cannot enter {directory}, which "
                f"belongs to uid {info.st_uid}. Choose another --data-dir, for example "
                "/var/lib/appliance.",
                path=directory,
                blocked=directory,
            )
        # Mode 0710 with the server user's group: that group may search the directory
        # to reach its own files, but may not list it or open anything else in it.
        logger.info(
            "Giving the primary group of %s (gid %s) search permission on %s",
            user.name,
            user.gid,
            directory,
        )
        os.chown(directory, -1, user.gid)
        directory.chmod((stat.S_IMODE(info.st_mode) & 0o700) | 0o010)

    def _load_or_create_password(self) -> str:
        try:
            return self._read_password()
        except FileNotFoundError:
            pass
        if (self.cluster_dir / "PG_VERSION").exists():
            raise EmbeddedPostgresError(
                f"The superuser password file {self.password_file} is missing, but the "
                f"cluster in {self.cluster_dir} exists, so nobody can log in. Restore the "
                "file, or delete the cluster directory to start over with an empty database."
            )

        password = secrets.token_urlsafe(32)
        try:
            descriptor = os.open(
                self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
            )
        except FileExistsError:
            # Another process created it between the read and the open.
            return self._read_password()
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(password + "\n")
        logger.info("Generated the PostgreSQL superuser password in %s", self.password_file)
        return password

    def _read_password(self) -> str:
        info = self.password_file.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            logger.warning("Restricting %s to mode 0600", self.password_file)
            self.password_file.chmod(0o600)
        password = self.password_file.read_text(encoding="ascii").strip()
        if not password:
            raise EmbeddedPostgresError(f"The password file {self.password_file} is empty.")
        return password

    def _initialize_cluster(self, password: str) -> None:
        # initdb writes into a staging directory that is renamed at the end, so an
        # interrupted first run leaves no half-made cluster behind.
        user = self.server_user
        staging_dir = self.data_dir / "postgres.initializing"
        if staging_dir.exists():
            logger.warning("Removing %s left by an interrupted initialization", staging_dir)
            shutil.rmtree(staging_dir)
        staging_dir.mkdir(mode=0o700)
        chown_to(staging_dir, user)

        logger.info("Initializing a PostgreSQL cluster in %s", self.cluster_dir)
        password_copy = self.socket_dir / "initdb-password"
        # The server user must read the password, but the secrets directory is
        # closed to it, so initdb reads a short-lived copy in its own directory.
        descriptor = os.open(password_copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(password + "\n")
        chown_to(password_copy, user)
        try:
            run_initdb(
                self.bin_dir,
                staging_dir,
                user,
                superuser=SUPERUSER,
                password_file=password_copy,
                timeout=self.timeout,
            )
        finally:
            password_copy.unlink()

        self._write_configuration(staging_dir)
        self._create_database(staging_dir)
        staging_dir.rename(self.cluster_dir)
        logger.info("Initialized the PostgreSQL cluster with database %s", DATABASE)

    def _write_configuration(self, cluster_dir: Path) -> None:
        # Opening the existing files keeps their owner (the server user) and mode.
        with (cluster_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# Set by appliance.db.embedded: Unix socket only, no TCP listener.\n"
                "listen_addresses = ''\n"
                f"port = {PORT}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "password_encryption = 'scram-sha-256'\n"
            )
        with (cluster_dir / "pg_hba.conf").open("w", encoding="utf-8") as hba:
            hba.write(
                "# Set by appliance.db.embedded: password login over the Unix socket only.\n"
                "# TYPE  DATABASE  USER  METHOD\n"
                "local   all       all   scram-sha-256\n"
            )

    def _create_database(self, cluster_dir: Path) -> None:
        # Single-user mode needs no socket and no password. It exits with status 0
        # even when a statement fails, so the result is read back from its output.
        result = run_server_command(
            [str(self.bin_dir / "postgres"), "--single", "-D", str(cluster_dir), "postgres"],
            self.server_user,
            timeout=self.timeout,
            stdin_text=(
                f"CREATE DATABASE {DATABASE};\n"
                "SELECT count(*) AS appliance_databases FROM pg_database "
                f"WHERE datname = '{DATABASE}';\n"
            ),
        )
        if 'appliance_databases = "1"' not in result.stdout:
            raise EmbeddedPostgresError(
                f"Creating the database {DATABASE} failed: {result.stderr.strip()}"
            )

    # Server process

    def start(self) -> None:
        """Initialize the cluster if needed and start the server, waiting until it accepts
        connections. A server that is already running is left alone.

        Raises:
            EmbeddedPostgresError: initialization or start-up failed; the message
                contains the end of the server log.
        """
        self.ensure_initialized()
        if self.is_running():
            logger.info("PostgreSQL is already running with PID %s", self.postmaster_pid())
            return
        self._check_server_version()
        self._remove_stale_lock_files()

        logger.info("Starting PostgreSQL on socket directory %s", self.socket_dir)
        try:
            self._pg_ctl("start", "--log", str(self.log_file), "--wait")
        except PostgresCommandError as exc:
            raise EmbeddedPostgresError(
                f"PostgreSQL failed to start: {exc}\nLast lines of {self.log_file}:\n"
                + self.log_tail()
            ) from exc
        logger.info("PostgreSQL is running with PID %s", self.postmaster_pid())

    def stop(self) -> None:
        """Stop the server with a fast shutdown and wait until it has exited."""
        if not self.is_running():
            logger.info("PostgreSQL is not running")
            return
        logger.info("Stopping PostgreSQL with PID %s", self.postmaster_pid())
        self._pg_ctl("stop", "--mode", "fast", "--wait")
        logger.info("PostgreSQL stopped")

    def is_running(self) -> bool:
        """Return whether the postmaster named in ``postmaster.pid`` is running."""
        pid = self.postmaster_pid()
        return pid is not None and process_is_running(pid)

    def _remove_stale_lock_files(self) -> None:
        socket_lock_file = self.socket_dir / f"{SOCKET_FILE_NAME}.lock"
        pid = remove_stale_lock_files(self.cluster_dir, socket_lock_file)
        if pid is not None:
            logger.warning("Removed the lock files of PostgreSQL PID %s, which had exited", pid)

    def postmaster_pid(self) -> int | None:
        """Return the PID in ``postmaster.pid``, which may be stale (see ``is_running``)."""
        return read_postmaster_pid(self.cluster_dir)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the server log, or an empty string."""
        return read_log_tail(self.log_file, lines)

    def _pg_ctl(self, action: str, *options: str) -> None:
        run_server_command(
            [
                str(self.bin_dir / "pg_ctl"),
                action,
                "--pgdata",
                str(self.cluster_dir),
                *options,
                *(["--timeout", str(int(self.timeout))] if action in ("start", "stop") else []),
            ],
            self.server_user,
            timeout=self.timeout + 5,
        )

    def _check_server_version(self) -> None:
        cluster_version = (self.cluster_dir / "PG_VERSION").read_text().strip()
        output = run_server_command(
            [str(self.bin_dir / "postgres"), "--version"], self.server_user, timeout=self.timeout
        ).stdout
        match = re.search(r"\(PostgreSQL\) (\d+)", output)
        if match is None or match.group(1) != cluster_version:
            raise EmbeddedPostgresError(
                f"The cluster in {self.cluster_dir} was created by PostgreSQL {cluster_version}, "
                f"but {self.bin_dir} holds {output.strip()!r}. Install PostgreSQL "
                f"{cluster_version}, or delete the cluster directory to start over."
            )

    # Connection strings

    def superuser_dsn(self, database: str = "postgres") -> str:
        """Return a DSN that logs in as the superuser over the Unix socket."""
        return self.dsn_for(SUPERUSER, self._read_password(), database)

    def dsn_for(self, role: str, password: str, database: str) -> str:
        """Return a Unix-socket DSN for ``role``, in the form asyncpg and libpq accept.

        The socket directory goes in the ``host`` query parameter because the
        authority part of a URI cannot contain a path.
        """
        return (
            f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@"
            f"/{quote(database, safe='')}?host={quote(str(self.socket_dir), safe='/')}"
            f"&port={PORT}"
        )
