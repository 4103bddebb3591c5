"""`appliance migrate`: apply the schema migrations."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from appliance.db.migrate import DEFAULT_ROLE_PREFIX, MigrationError, migrate
from appliance.log import configure_logging
from appliance.settings import SettingsError, check_database_url


@click.command("migrate")
@click.option(
    "--database-url",
    envvar="APPLIANCE_MIGRATE_DATABASE_URL",
    help="DSN of a role that owns the schema and may create roles "
    "(or a file named by APPLIANCE_MIGRATE_DATABASE_URL_FILE).",
)
@click.option(
    "--role-password-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder with one file per plane (auth, admin, pim, breakglass) "
    "containing that role's password.",
)
@click.option(
    "--role-prefix",
    envvar="APPLIANCE_ROLE_PREFIX",
    default=DEFAULT_ROLE_PREFIX,
    show_default=True,
    help="Name the plane roles <prefix>_auth, <prefix>_admin and so on. Roles belong to the "
    "whole server, so a second deployment on the same server needs its own prefix; "
    "a database keeps the prefix of its first migration.",
)
def migrate_command(
    database_url: str | None, role_password_dir: Path | None, role_prefix: str
) -> None:
    """Apply pending migrations under an advisory lock; safe to run from several pods at once."""
    configure_logging()
    if database_url is None:
        url_file = os.environ.get("APPLIANCE_MIGRATE_DATABASE_URL_FILE")
        if not url_file:
            raise click.UsageError(
                "give --database-url, APPLIANCE_MIGRATE_DATABASE_URL "
                "or APPLIANCE_MIGRATE_DATABASE_URL_FILE"
            )
        try:
            database_url = Path(url_file).read_text("utf-8").strip()
        except OSError as error:
            raise click.ClickException(f"cannot read {url_file}: {error.strerror}") from None
    try:
        check_database_url("--database-url", database_url)
        applied = asyncio.run(
            migrate(database_url, role_password_dir=role_password_dir, role_prefix=role_prefix)
        )
    except (SettingsError, MigrationError) as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"cannot reach PostgreSQL: {error}") from None
    click.echo(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
