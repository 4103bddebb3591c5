"""`appliance audit`: verify the hash chain of each org."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

import asyncpg
import click

from appliance.audit.verify import ChainBroken, verify_chain
from appliance.cli.local_db import resolve_admin_dsn
from appliance.db.queries.orgs import ORG_BY_NAME, ORG_LIST
from appliance.db.tenancy import set_org

EXIT_BROKEN = 1


@click.group()
def audit() -> None:
    """Audit trail."""


async def _verify(dsn: str, org: str | None) -> list[tuple[str, int | None, str | None]]:
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        if org is None:
            orgs = await conn.fetch(ORG_LIST)
        else:
            row = await conn.fetchrow(ORG_BY_NAME, org)
            if row is None:
                raise click.ClickException(f"org {org!r} not found")
            orgs = [row]
        results: list[tuple[str, int | None, str | None]] = []
        for row in orgs:
            async with conn.transaction(readonly=True, isolation="repeatable_read"):
                await set_org(conn, row["id"])
                try:
                    report = await verify_chain(conn, row["id"])
                    results.append((row["name"], report.events, None))
                except ChainBroken as error:
                    results.append((row["name"], None, str(error)))
        return results
    finally:
        await conn.close()


@audit.command("verify")
@click.option("--org", help="Only this org (default: every org).")
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
def verify_command(org: str | None, database_url: str | None, data_dir: Path | None) -> None:
    """Recompute every org's audit hash chain; exit 1 if any link is broken."""
    dsn = database_url or resolve_admin_dsn(data_dir)
    try:
        results = asyncio.run(_verify(dsn, org))
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot read the audit trail: {error}") from None
    broken = False
    for name, events, problem in results:
        if problem is None:
            click.echo(f"{name}: ok, {events} events, chain verified")
        else:
            broken = True
            click.echo(f"{name}: BROKEN: {problem}")
    if broken:
        sys.exit(EXIT_BROKEN)


@audit.command("export")
@click.option("--org", required=True, help="Org whose audit trail to export.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (mode 0600; default: standard output).",
)
@click.option("--since", help="Only events at or after this RFC 3339 time.")
@click.option("--until", help="Only events before this RFC 3339 time.")
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
def export_command(
    org: str,
    out: Path | None,
    since: str | None,
    until: str | None,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Export an org's audit trail as JSON lines that `verify-export` can check offline."""
    import os
    from datetime import datetime

    from appliance.audit.export import AuditFilter, export_org

    def moment(name: str, value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not an RFC 3339 time", param_hint=name
            ) from None
        if parsed.tzinfo is None:
            raise click.BadParameter("add a time zone, e.g. a trailing Z", param_hint=name)
        return parsed

    selection = AuditFilter(since=moment("--since", since), until=moment("--until", until))
    dsn = database_url or resolve_admin_dsn(data_dir)

    async def run() -> int:
        conn: asyncpg.Connection = await asyncpg.connect(dsn)
        count = 0
        try:
            if out is None:
                async for line in export_org(conn, org, selection):
                    sys.stdout.write(line)
                    count += 1
                return count
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                async for line in export_org(conn, org, selection):
                    file.write(line)
                    count += 1
            return count
        finally:
            await conn.close()

    try:
        count = asyncio.run(run())
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot read the audit trail: {error}") from None
    if out is not None:
        click.echo(f"{org}: exported {count} events to {out}", err=True)


@audit.command("verify-export")
@click.argument("file", type=click.File("r", encoding="utf-8"))
def verify_export_command(file: TextIO) -> None:
    """Recompute every hash of an exported JSON-lines FILE ('-' reads stdin); exit 1 if broken."""
    from appliance.audit.export import verify_export

    try:
        report = verify_export(file)
    except ChainBroken as error:
        click.echo(f"BROKEN: {error}")
        sys.exit(EXIT_BROKEN)
    anchored = "from genesis" if report.anchored else f"from seq {report.first_seq} (not anchored)"
    gaps = f"; {len(report.gaps)} gap(s) from filtering: {report.gaps}" if report.gaps else ""
    click.echo(
        f"ok, {report.events} events verified {anchored}, last hash {report.last_hash}{gaps}"
    )
