"""`appliance admin login|logout|whoami|bootstrap`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import click

from appliance.admin.bootstrap import Bootstrapped, BootstrapRefused, bootstrap_admin
from appliance.admin.cli import admin
from appliance.admin.cli.client import AdminClient, path
from appliance.admin.cli.context import (
    Cli,
    Session,
    admin_options,
    default_session_file,
    read_secret_line,
    write_qr,
)
from appliance.admin.enrollment import enrollment
from appliance.admin.users import generate_password
from appliance.cli.local_db import resolve_admin_dsn
from appliance.errors import ApiError


@admin.command()
@click.option(
    "--url", required=True, envvar="APPLIANCE_ADMIN_URL", help="Base URL of the admin plane."
)
@click.option("--org", required=True, help="Org to log in to (`system` for platform admins).")
@click.option("--username", required=True, help="Your username in that org.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
@click.option("--totp", help="Current TOTP code (prompted when omitted).")
@click.option(
    "--session-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to store the session token (mode 0600).",
)
@click.option("--cacert", type=click.Path(exists=True, dir_okay=False), help="CA bundle for TLS.")
@click.option("--json", "as_json", is_flag=True, help="Print the login response without the token.")
def login(
    url: str,
    org: str,
    username: str,
    password_stdin: bool,
    totp: str | None,
    session_file: Path | None,
    cacert: str | None,
    as_json: bool,
) -> None:
    """Log in with password and TOTP; store the short-lived session token."""
    password = (
        read_secret_line("password")
        if password_stdin
        else click.prompt("Password", hide_input=True)
    )
    totp = totp or click.prompt("TOTP code")
    client = AdminClient(url, cacert=cacert)
    result = client.call(
        "POST",
        f"/admin/v1/orgs/{path(org)}/login",
        {"username": username, "password": password, "totp": totp},
    )
    file = session_file or default_session_file()
    Session(url, org, username, result["token"], result["expires_at"]).save(file)
    shown = {k: v for k, v in result.items() if k != "token"}
    if as_json:
        click.echo(json.dumps(shown, indent=2, sort_keys=True))
    else:
        click.echo(
            f"logged in to {org} as {username} ({', '.join(result['roles'])}); "
            f"session until {result['expires_at']}, stored in {file}"
        )


@admin.command()
@admin_options
def logout(cli: Cli) -> None:
    """Revoke the session and forget it."""
    cli.client.call("POST", cli.org_path("logout"))
    click.echo(f"logged out of {cli.session.org}")


@admin.command()
@admin_options
def whoami(cli: Cli) -> None:
    """Show the session's user, roles and permissions."""
    cli.emit(
        cli.client.call("GET", cli.org_path("me")),
        lambda me: (
            f"{me['username']} in {me['org']}: roles {', '.join(me['roles']) or 'none'}; "
            f"session until {me['session_expires_at']}"
        ),
    )


@admin.command()
@click.option("--org", default="system", show_default=True, help="Org whose first admin to create.")
@click.option("--username", required=True, help="Username of the first admin.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (default: generate and print one).",
)
@click.option(
    "--database-url",
    envvar="APPLIANCE_ADMIN_DATABASE_URL",
    help="DSN of the admin role (default: the local `appliance up` database).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of `appliance up`.",
)
@click.option(
    "--qr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the TOTP QR code (PNG) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bootstrap(
    org: str,
    username: str,
    password_stdin: bool,
    database_url: str | None,
    data_dir: Path | None,
    qr_out: Path | None,
    as_json: bool,
) -> None:
    """Create the first admin of an org, with direct database access.

    For org `system` (the default) this creates the org and a platform-admin,
    who creates other orgs through the API. It refuses when the org already
    has an administrator.
    """
    password = read_secret_line("password") if password_stdin else generate_password()
    dsn = database_url or resolve_admin_dsn(data_dir)

    async def run() -> Bootstrapped:
        conn = await asyncpg.connect(dsn)
        try:
            return await bootstrap_admin(conn, org=org, username=username, password=password)
        finally:
            await conn.close()

    try:
        done = asyncio.run(run())
    except (BootstrapRefused, ApiError) as error:
        raise click.ClickException(getattr(error, "description", None) or str(error)) from None
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot reach the database: {error}") from None
    totp = enrollment(done.totp_secret, account=username, issuer=f"appliance {org}")
    result: dict[str, object] = {"org": org, "username": username, "role": done.role, "totp": totp}
    if not password_stdin:
        result["password"] = password
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
        write_qr(totp, qr_out)
        return
    lines = [
        f"created {username} as {result['role']} of org {org}",
        f"TOTP provisioning URI (shown once): {totp['provisioning_uri']}",
    ]
    if not password_stdin:
        lines.append(f"password (shown once): {password}")
    click.echo("\n".join(lines) + write_qr(totp, qr_out))
