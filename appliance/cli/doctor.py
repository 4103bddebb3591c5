"""`appliance doctor`: check every plane, the database, keys and clocks; name the runbook."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance.doctor.findings import Finding, problems, render_json, render_text
from appliance.doctor.planes import check_plane

PLANES = ("auth", "admin", "pim", "breakglass")
DEFAULT_BASE_PORT = 8401
EXIT_PROBLEMS = 1


def _database_findings(database_url: str | None, data_dir: Path | None) -> list[Finding]:
    from appliance.doctor.database import run_database_checks

    dsn = database_url
    if dsn is None:
        from appliance.cli.local_db import resolve_admin_dsn

        try:
            dsn = resolve_admin_dsn(data_dir)
        except click.ClickException as error:
            return [
                Finding(
                    "database",
                    "skipped",
                    f"not checked: {error.message} (or set APPLIANCE_ADMIN_DATABASE_URL)",
                )
            ]
    try:
        return run_database_checks(dsn)
    except TimeoutError:
        return [Finding("database", "fail", "checks timed out", "runbooks/database-outage.md")]


@click.command()
@click.option(
    "--base-url",
    default="http://127.0.0.1",
    show_default=True,
    help="Scheme and host of the planes when they share a host (as under `appliance up`).",
)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65532),
    default=DEFAULT_BASE_PORT,
    show_default=True,
    help="Port of the auth plane; admin, pim and breakglass use the next three.",
)
@click.option("--auth-url", help="Base URL of the auth plane (overrides --base-url/--base-port).")
@click.option("--admin-url", help="Base URL of the admin plane.")
@click.option("--pim-url", help="Base URL of the PIM plane.")
@click.option("--breakglass-url", help="Base URL of the break-glass plane.")
@click.option(
    "--database-url",
    envvar="APPLIANCE_ADMIN_DATABASE_URL",
    help="DSN of the admin role (default: the local `appliance up` database).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of `appliance up`, used when --database-url is not given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(
    base_url: str,
    base_port: int,
    auth_url: str | None,
    admin_url: str | None,
    pim_url: str | None,
    breakglass_url: str | None,
    database_url: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Check every plane, the database, snapshot, journal, key ages and clock skew.

    Prints each finding and, for every problem, the runbook to open. Exits 1
    when anything is wrong (a warning included), 0 when all checks pass.
    """
    overrides = {
        "auth": auth_url,
        "admin": admin_url,
        "pim": pim_url,
        "breakglass": breakglass_url,
    }
    host = base_url.rstrip("/")
    findings: list[Finding] = []
    for offset, plane in enumerate(PLANES):
        url = overrides[plane] or f"{host}:{base_port + offset}"
        findings.extend(check_plane(plane, url))
    findings.extend(_database_findings(database_url, data_dir))
    click.echo(render_json(findings) if as_json else render_text(findings))
    if problems(findings):
        sys.exit(EXIT_PROBLEMS)
