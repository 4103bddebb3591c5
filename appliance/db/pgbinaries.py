"""Locate PostgreSQL server binaries and run them as an unprivileged system user.

``initdb``, ``pg_ctl`` and ``postgres`` exit with "cannot be run as root" when
started by root. When this process is root, every server command runs
through ``runuser -u USER --`` (util-linux) as the ``postgres`` system user, or as
``appliance-pg``, which is created on first use when ``postgres`` does not exist.
When this process is not root, the commands run as the current user.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

REQUIRED_PROGRAMS = ("initdb", "pg_ctl", "postgres")

# Searched in this order after PATH. A glob matching several versions yields the
# newest version first.
SYSTEM_BIN_DIR_PATTERNS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG packages for RHEL, Fedora
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew on Intel macOS
)

PREFERRED_SERVER_USER = "postgres"
FALLBACK_SERVER_USER = "appliance-pg"

# Variables that libpq-based programs and the server read. A PGPORT or PGDATA left in
# the caller's environment would change which port or data directory the server uses.
_SCRUBBED_ENV_PREFIX = "PG"


class EmbeddedPostgresError(RuntimeError):
    """A local PostgreSQL server could not be found, set up, started or stopped."""


class PostgresNotFoundError(EmbeddedPostgresError):
    """No directory with the PostgreSQL server programs was found."""


class PostgresCommandError(EmbeddedPostgresError):
    """A PostgreSQL program exited with a non-zero status."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        program = Path(self.argv[0]).name if self.argv else "?"
        super().__init__(f"{program} failed with exit status {returncode}: {output.strip()}")


@dataclass(frozen=True)
class ServerUser:
    """The system account that owns a cluster's files and runs its server."""

    name: str
    uid: int
    gid: int

    @classmethod
    def from_passwd(cls, entry: pwd.struct_passwd) -> ServerUser:
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)

    def group_ids(self) -> frozenset[int]:
        """Return the primary and supplementary group ids of this user."""
        return frozenset(os.getgrouplist(self.name, self.gid))


def find_postgres_bin_dir(
    *,
    include_pgserver: bool = True,
    search_path: str | None = None,
    patterns: Sequence[str] = SYSTEM_BIN_DIR_PATTERNS,
) -> Path:
    """Return the directory that contains ``initdb``, ``pg_ctl`` and ``postgres``.

    The search order is ``pg_ctl`` on ``search_path`` (default: ``$PATH``), then
    ``patterns`` (newest version first), then the binaries in the ``pgserver`` wheel
    when it is installed and ``include_pgserver`` is true. ``pgserver`` builds have no
    TLS support, so callers that serve TCP pass ``include_pgserver=False``.

    Raises:
        PostgresNotFoundError: no candidate directory contains all three programs.
    """
    for candidate in _candidate_bin_dirs(search_path, patterns, include_pgserver):
        if _has_server_programs(candidate):
            logger.debug("Found PostgreSQL server binaries in %s", candidate)
            return candidate

    searched = ", ".join(["PATH", *patterns])
    message = (
        f"PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found in {searched}. "
        "Install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; "
        "macOS: brew install postgresql@16)"
    )
    if include_pgserver:
        message += " or install the bundled server with: pip install 'appliance[embedded]'"
    raise PostgresNotFoundError(message + ".")


def _candidate_bin_dirs(
    search_path: str | None, patterns: Sequence[str], include_pgserver: bool
) -> Iterator[Path]:
    pg_ctl = shutil.which("pg_ctl", path=search_path)
    if pg_ctl is not None:
        # /usr/local/bin/pg_ctl may be a symbolic link into the real bin directory,
        # which also contains programs that were not linked (pg_isready, psql).
        yield Path(pg_ctl).resolve().parent
        yield Path(pg_ctl).parent

    for pattern in patterns:
        yield from sorted((Path(p) for p in glob.glob(pattern)), key=_version_key, reverse=True)

    if include_pgserver:
        pgserver_bin = _pgserver_bin_dir()
        if pgserver_bin is not None:
            yield pgserver_bin


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """Return the version numbers in a path such as /usr/lib/postgresql/15/bin."""
    return tuple(int(number) for number in re.findall(r"\d+", str(bin_dir)))


def _pgserver_bin_dir() -> Path | None:
    # find_spec locates the package without importing it: importing pgserver runs
    # its module-level setup, which this lookup does not need.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    # pgserver 0.1.x ships the PostgreSQL installation in pgserver/pginstall/.
    return Path(spec.origin).parent / "pginstall" / "bin"


def _has_server_programs(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in REQUIRED_PROGRAMS)


def server_user_for_current_process() -> ServerUser | None:
    """Return the user that PostgreSQL must run as, or None to run as the current user.

    Only root needs another user: ``postgres`` when it exists, else ``appliance-pg``,
    which this function creates.
    """
    if os.geteuid() != 0:
        return None
    try:
        return ServerUser.from_passwd(pwd.getpwnam(PREFERRED_SERVER_USER))
    except KeyError:
        return ensure_system_user(FALLBACK_SERVER_USER)


def ensure_system_user(name: str) -> ServerUser:
    """Return the system user ``name``, creating it with ``useradd`` when it is missing.

    The account has no home directory and ``/usr/sbin/nologin`` as its shell.
    """
    try:
        return ServerUser.from_passwd(pwd.getpwnam(name))
    except KeyError:
        pass

    useradd = _find_system_program("useradd")
    logger.info("Creating system user %s to run PostgreSQL", name)
    argv = [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        # A concurrent process may have created the same user first, so the
        # lookup decides success rather than the exit status.
        return ServerUser.from_passwd(pwd.getpwnam(name))
    except KeyError:
        raise PostgresCommandError(argv, result.returncode, result.stderr) from None


def first_untraversable_directory(path: Path, user: ServerUser | None) -> Path | None:
    """Return the first existing directory on the way to ``path`` that ``user`` cannot enter.

    ``path`` itself is included when it exists. Missing components are not checked,
    because the code that creates them sets their mode. ``user=None`` means the current
    process. The check reads permission bits only.
    """
    # NOTE: POSIX ACLs are not consulted, so an ACL that grants search permission
    # beyond the mode bits still counts as a denial here.
    absolute = Path(os.path.abspath(path))
    for directory in [*reversed(absolute.parents), absolute]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return None
        except PermissionError:
            return directory.parent
        if not stat.S_ISDIR(info.st_mode):
            return directory
        if not _may_search(info, user):
            return directory
    return None


def _may_search(info: os.stat_result, user: ServerUser | None) -> bool:
    if user is None:
        uid, group_ids = os.geteuid(), frozenset([os.getegid(), *os.getgroups()])
    else:
        uid, group_ids = user.uid, user.group_ids()
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in group_ids:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def process_is_running(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie.

    A killed server stays a zombie until its parent reaps it. ``kill(pid, 0)``,
    which ``pg_ctl`` and the postmaster use to test a ``postmaster.pid``, succeeds
    on a zombie, so they take such a server for a live one.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # the process exists but belongs to another user
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        # Without procfs (macOS) the kill test is all there is. With procfs, a
        # missing entry means the process exited after the kill test.
        return not Path("/proc/self/stat").exists()
    # The state field follows the command name, which is in parentheses and may
    # itself contain spaces or parentheses.
    state = stat_line.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def chown_to(path: Path, user: ServerUser | None) -> None:
    """Give ``path`` to ``user``. ``None`` (the current user already owns it) does nothing."""
    if user is not None:
        os.chown(path, user.uid, user.gid)


def server_command(argv: Sequence[str], user: ServerUser | None) -> list[str]:
    """Return ``argv`` prefixed with ``runuser -u USER --`` when ``user`` is given."""
    if user is None:
        return list(argv)
    return [_find_system_program("runuser"), "-u", user.name, "--", *argv]


def server_environment() -> dict[str, str]:
    """Return the current environment without PG* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV_PREFIX)}


def run_server_command(
    argv: Sequence[str],
    user: ServerUser | None,
    *,
    timeout: float,
    stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program as ``user`` and return its result.

    Raises:
        PostgresCommandError: the program exited with a non-zero status.
        EmbeddedPostgresError: the program did not finish within ``timeout`` seconds.
    """
    full_argv = server_command(argv, user)
    logger.debug("Running %s", " ".join(full_argv))
    try:
        # cwd="/" because the server user may not be allowed into the caller's
        # working directory, and the programs print warnings when they cannot
        # return to it.
        result = subprocess.run(  # noqa: S603
            full_argv,
            input=stdin_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env=server_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedPostgresError(
            f"{Path(argv[0]).name} did not finish within {timeout:g} seconds"
        ) from exc
    if result.returncode != 0:
        raise PostgresCommandError(full_argv, result.returncode, result.stdout + result.stderr)
    return result


def _find_system_program(name: str) -> str:
    # root's PATH usually contains /usr/sbin, but cron jobs and minimal containers
    # may leave it out.
    search_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search_path)
    if found is None:
        raise EmbeddedPostgresError(
            f"{name} was not found. It is needed to run PostgreSQL as an unprivileged user "
            "when the appliance runs as root. Install util-linux (runuser) and passwd "
            "(useradd), or run the appliance as a non-root user."
        )
    return found


def run_initdb(
    bin_dir: Path,
    data_dir: Path,
    user: ServerUser | None,
    *,
    superuser: str,
    password_file: Path,
    timeout: float,
    sync: bool = True,
) -> None:
    """Create a cluster in ``data_dir`` with SCRAM authentication, UTF-8 and the C locale.

    ``password_file`` contains the superuser password and must be readable by ``user``.
    ``sync=False`` skips flushing the new files to disk, which is safe only for
    throwaway clusters.
    """
    argv = [
        str(bin_dir / "initdb"),
        "--pgdata",
        str(data_dir),
        "--username",
        superuser,
        "--pwfile",
        str(password_file),
        "--auth",
        "scram-sha-256",
        "--encoding",
        "UTF8",
        "--locale",
        "C",
        "--no-instructions",
    ]
    if not sync:
        argv.append("--no-sync")
    run_server_command(argv, user, timeout=timeout)


def read_postmaster_pid(data_dir: Path) -> int | None:
    """Return the PID on the first line of ``postmaster.pid``, or None without one.

    The file outlives a killed server, so check the PID with ``process_is_running``.
    """
    try:
        first_line = (data_dir / "postmaster.pid").read_text(encoding="ascii").split("\n", 1)[0]
    except FileNotFoundError:
        return None
    return int(first_line) if first_line.strip().isdigit() else None


def remove_stale_lock_files(data_dir: Path, socket_lock_file: Path) -> int | None:
    """Remove ``postmaster.pid`` and the socket lock file when their server has exited.

    Returns the PID of the exited server, or None when nothing was removed.
    """
    # The postmaster removes a lock file whose PID no longer exists, but it takes
    # a zombie for a live server. A SIGKILLed postmaster stays a zombie until its
    # parent reaps it, and a container's PID 1 may do that late or never. A lock
    # file of a live process is kept, because without it a second postmaster could
    # start on the same data directory and corrupt it.
    pid = read_postmaster_pid(data_dir)
    if pid is None or process_is_running(pid):
        return None
    (data_dir / "postmaster.pid").unlink(missing_ok=True)
    socket_lock_file.unlink(missing_ok=True)
    return pid


def read_log_tail(log_file: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a server log, or an empty string without one."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
