"""`appliance audit`: verify the hash chain of each org."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
@click.option("--database-url", envvar="APPLIANCE_ADMIN_DATABASE_URL", help="DSN of the admin role (default: the local `appliance up` database).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Data folder of `appliance up`.")
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
