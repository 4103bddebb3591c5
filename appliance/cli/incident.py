"""`appliance incident`: the on-call steps after a break-glass use.

`alerts` shows whether the security alerts of an incident reached their
webhook targets; `close` records in the audit trail that the incident has been
reviewed and closed. Both connect as the admin plane's database role, like
`appliance audit verify`, so whoever runs them already holds that role's
credentials. The actor of `close` is the name given with `--actor`: the
database login is the only authentication, so the name is recorded as given.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import click

from appliance.audit.chain import AuditEvent, append
from appliance.cli.local_db import resolve_admin_dsn
from appliance.db.queries.incidents import INCIDENT_ALERT_TARGET_COUNT, INCIDENT_ALERTS
from appliance.db.queries.orgs import ORG_BY_NAME

INCIDENT_CLOSED = "incident.closed"
EXIT_NOT_DELIVERED = 1

database_url_option = click.option(
    "--database-url",
    envvar="APPLIANCE_ADMIN_DATABASE_URL",
    help="DSN of the admin role (default: the local `appliance up` database).",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of `appliance up`, used when --database-url is not given.",
)


@click.group()
def incident() -> None:
    """After a break-glass use: check its alerts and close the incident."""


async def _org_id(conn: asyncpg.Connection, org: str) -> Any:
    row = await conn.fetchrow(ORG_BY_NAME, org)
    if row is None:
        raise click.ClickException(f"org {org!r} not found")
    return row["id"]


async def _alerts(dsn: str, org: str, incident_id: str | None) -> tuple[int, list[dict[str, Any]]]:
    from appliance.db.tenancy import set_org

    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        org_id = await _org_id(conn, org)
        async with conn.transaction(readonly=True):
            await set_org(conn, org_id)
            targets = await conn.fetchval(INCIDENT_ALERT_TARGET_COUNT, org_id)
            rows = await conn.fetch(INCIDENT_ALERTS, org_id, incident_id)
    finally:
        await conn.close()
    alerts = []
    for row in rows:
        payload = row["payload"]
        data = json.loads(payload) if isinstance(payload, str) else payload
        alerts.append(
            {
                "event_type": row["event_type"],
                "subject": row["subject"],
                "incident": data.get("incident"),
                "created_at": row["created_at"].isoformat(),
                "status": row["status"],
                "attempts": row["attempts"],
                "last_http_status": row["last_http_status"],
                "last_error": row["last_error"],
                "delivered_at": row["delivered_at"].isoformat() if row["delivered_at"] else None,
            }
        )
    return int(targets), alerts


@incident.command("alerts")
@click.option("--org", required=True, help="Org name.")
@click.option("--incident", "incident_id", help="Only alerts of this incident id, e.g. INC-4711.")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
@database_url_option
@data_dir_option
def alerts_command(
    org: str,
    incident_id: str | None,
    as_json: bool,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """List the break-glass alerts of ORG; exit 1 if one is not delivered yet.

    An org without an enabled alert target sends no alerts at all: the command
    reports that and exits 1, because no alert reached anyone outside the on-call team.
    """
    dsn = database_url or resolve_admin_dsn(data_dir)
    try:
        targets, alerts = asyncio.run(_alerts(dsn, org, incident_id))
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot read the alerts: {error}") from None
    undelivered = [a for a in alerts if a["status"] != "delivered"]
    if as_json:
        click.echo(json.dumps({"alert_targets": targets, "alerts": alerts}, indent=2))
    elif targets == 0:
        click.echo(f"{org}: no alert target configured, so no alert was sent")
    else:
        for alert in alerts:
            click.echo(
                f"{alert['created_at']}  {alert['event_type']:<28} {alert['subject']:<16} "
                f"{alert['incident'] or '-':<12} {alert['status']:<9} "
                f"attempts {alert['attempts']}, last HTTP status {alert['last_http_status']}"
            )
        click.echo(
            f"{org}: {len(alerts)} alerts to {targets} targets, {len(undelivered)} not delivered"
        )
    if targets == 0 or undelivered:
        raise SystemExit(EXIT_NOT_DELIVERED)


async def _close(dsn: str, org: str, event: AuditEvent) -> int:
    from appliance.db.tenancy import set_org

    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        org_id = await _org_id(conn, org)
        async with conn.transaction():
            await set_org(conn, org_id)
            seq: int = await append(conn, org_id, event)
    finally:
        await conn.close()
    return seq


@incident.command("close")
@click.option("--org", required=True, help="Org name.")
@click.option("--incident", "incident_id", required=True, help="Incident id, e.g. INC-4711.")
@click.option("--actor", required=True, help="Your name, recorded as the event's actor.")
@click.option("--summary", required=True, help="What happened and what was reviewed.")
@database_url_option
@data_dir_option
def close_command(
    org: str,
    incident_id: str,
    actor: str,
    summary: str,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Record an `incident.closed` event for INCIDENT in ORG's audit trail."""
    for name, value in (("--incident", incident_id), ("--actor", actor), ("--summary", summary)):
        if not value.strip():
            raise click.BadParameter("must not be empty", param_hint=name)
    if len(summary) > 2000:
        raise click.BadParameter("at most 2000 characters", param_hint="--summary")
    event = AuditEvent(
        event_type=INCIDENT_CLOSED,
        plane="admin",
        actor=actor,
        subject=incident_id,
        outcome="success",
        occurred_at=datetime.now(UTC),
        data={"summary": summary, "recorded_by": "appliance incident close"},
    )
    dsn = database_url or resolve_admin_dsn(data_dir)
    try:
        seq = asyncio.run(_close(dsn, org, event))
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot write the audit event: {error}") from None
    click.echo(f"{org}: recorded {INCIDENT_CLOSED} for {incident_id} as audit event {seq}")
