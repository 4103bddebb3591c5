"""Numbered SQL migrations, applied once, under an advisory lock.

Several pods may start at once: each takes the same session advisory lock on
a dedicated connection, so one applies the pending files and the others wait,
then find nothing to do. Each file runs in its own transaction with a lock
timeout, so a migration that would queue behind a long-running query fails
fast instead of blocking every query behind it. An applied file whose
checksum changed stops the run: migrations are append-only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from appliance.log import log_fields
from appliance.settings import Plane

log = logging.getLogger("appliance.db.migrate")

# Arbitrary constant shared by every replica: the advisory lock key of migrations.
MIGRATION_LOCK_KEY = 0x61707061_6C69616E  # "applian"
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "120s"

DEFAULT_ROLE_PREFIX = "appliance"
# Role names are at most 63 bytes; the longest suffix is "_breakglass".
ROLE_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,47}")
# The migrations name the plane roles `appliance_<plane>`, directly or as the
# string 'appliance_' joined with the plane in a DO block.
_PLANE_ROLE = re.compile(r"\bappliance_(auth|admin|pim|breakglass)\b")
_ROLE_NAME_LITERAL = "'appliance_' ||"


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def sql_for(self, role_prefix: str) -> str:
        """Return the SQL with the plane roles named `<role_prefix>_<plane>`.

        The checksum stays that of the file, so a database migrated with another
        prefix still recognises its applied files.
        """
        if role_prefix == DEFAULT_ROLE_PREFIX:
            return self.sql
        renamed = _PLANE_ROLE.sub(lambda match: f"{role_prefix}_{match.group(1)}", self.sql)
        return renamed.replace(_ROLE_NAME_LITERAL, f"'{role_prefix}_' ||")


def plane_role(plane: Plane, role_prefix: str = DEFAULT_ROLE_PREFIX) -> str:
    """Return the database role of `plane` in a schema migrated with `role_prefix`."""
    return f"{role_prefix}_{plane.value}"


def check_role_prefix(role_prefix: str) -> str:
    if role_prefix.startswith("pg_"):
        raise MigrationError(
            f"role prefix {role_prefix!r} is invalid: PostgreSQL reserves role names "
            "that start with pg_"
        )
    if not ROLE_PREFIX_PATTERN.fullmatch(role_prefix):
        raise MigrationError(
            f"role prefix {role_prefix!r} is invalid: use 1 to 48 characters of a-z, 0-9 "
            "and _, starting with a letter"
        )
    return role_prefix


def load_migrations() -> list[Migration]:
    """Read `NNNN_name.sql` files from the package, in version order."""
    folder = resources.files("appliance.db") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        if not number.isdigit():
            raise MigrationError(f"migration file {entry.name!r} must start with a number")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


async def migrate(
    dsn: str,
    *,
    role_password_dir: Path | None = None,
    role_prefix: str = DEFAULT_ROLE_PREFIX,
) -> list[int]:
    """Apply pending migrations and return the versions applied by this call.

    Roles are shared by every database of a server, so two deployments on one
    server need different `role_prefix` values. A database keeps the prefix it
    was first migrated with; another prefix raises `MigrationError`.
    """
    check_role_prefix(role_prefix)
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT set_config('lock_timeout', $1, false)", LOCK_TIMEOUT)
        await conn.execute("SELECT set_config('statement_timeout', $1, false)", STATEMENT_TIMEOUT)
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            if role_password_dir is not None:
                await _check_roles_not_shared(conn, role_prefix)
            applied = await _apply_pending(conn, role_prefix)
            if role_password_dir is not None:
                await set_role_passwords(conn, role_password_dir, role_prefix)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, role_prefix: str) -> list[int]:
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    done = {row["version"]: row for row in rows}
    record_prefix = await _check_same_prefix(conn, role_prefix, migrated=bool(done))
    applied: list[int] = []
    for migration in load_migrations():
        previous = done.get(migration.version)
        if previous is not None:
            if previous["checksum"] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql changed after it "
                    "was applied; add a new migration instead of editing an applied one"
                )
            continue
        try:
            async with conn.transaction():
                if record_prefix:
                    # In the first migration's transaction: a first run that fails
                    # leaves no prefix behind, so another prefix can still be chosen.
                    await conn.execute(
                        "INSERT INTO schema_role_prefix (prefix) VALUES ($1)", role_prefix
                    )
                    record_prefix = False
                await conn.execute(migration.sql_for(role_prefix))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresError as error:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name}.sql failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        log.info(
            "migration applied",
            extra=log_fields(version=migration.version, name=migration.name),
        )
        applied.append(migration.version)
    return applied


async def _check_same_prefix(conn: asyncpg.Connection, role_prefix: str, *, migrated: bool) -> bool:
    """Raise when the database was migrated with another prefix; return whether to record it.

    A database migrated before the prefix was recorded used the default prefix,
    which is recorded here. A new database records its prefix with its first
    migration.
    """
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_role_prefix (
            prefix text NOT NULL,
            one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row)
        )
        """
    )
    recorded = await conn.fetchval("SELECT prefix FROM schema_role_prefix")
    if recorded is None and not migrated:
        return True
    if recorded is None:
        recorded = DEFAULT_ROLE_PREFIX
        await conn.execute("INSERT INTO schema_role_prefix (prefix) VALUES ($1)", recorded)
    if recorded != role_prefix:
        raise MigrationError(
            f"this database's plane roles are named {recorded}_<plane>, not {role_prefix}_<plane>; "
            f"migrate it with role prefix {recorded!r}"
        )
    return False


async def _check_roles_not_shared(conn: asyncpg.Connection, role_prefix: str) -> None:
    """Raise when the plane roles serve another database, whose planes a new password locks out.

    Migration grants each plane role CONNECT on its database, so an explicit
    grant on another database means another deployment uses the same roles.
    """
    roles = [plane_role(plane, role_prefix) for plane in Plane]
    other = await conn.fetchval(
        """
        SELECT string_agg(DISTINCT d.datname, ', ')
        FROM pg_database d, aclexplode(d.datacl) acl
        JOIN pg_roles r ON r.oid = acl.grantee
        WHERE r.rolname = ANY($1::text[]) AND d.datname <> current_database()
        """,
        roles,
    )
    if other:
        raise MigrationError(
            f"the roles {role_prefix}_<plane> also serve database {other}, and setting their "
            "passwords would lock out that database's planes; migrate with another role "
            "prefix, or without a role password folder to share the roles as they are"
        )


async def set_role_passwords(
    conn: asyncpg.Connection, folder: Path, role_prefix: str = DEFAULT_ROLE_PREFIX
) -> list[str]:
    """Set each plane role's password from `folder/<plane>` where that file exists."""
    changed: list[str] = []
    for plane in Plane:
        path = folder / plane.value
        if not path.exists():
            continue
        password = path.read_text("utf-8").strip()
        if len(password) < 16:
            raise MigrationError(f"password file {path} is shorter than 16 characters")
        role = plane_role(plane, role_prefix)
        # ALTER ROLE takes no bind parameters. Sending a SCRAM verifier instead
        # of the password keeps the password out of any server statement log.
        literal = await conn.fetchval("SELECT quote_literal($1)", scram_verifier(password))
        await conn.execute(f"ALTER ROLE {role} PASSWORD {literal}")
        changed.append(role)
    return changed


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """Compute the SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802, RFC 7677)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
