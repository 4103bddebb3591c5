"""`appliance admin audit`: search, verify and export the audit trail through the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from appliance.admin.cli import admin
from appliance.admin.cli.context import Cli, admin_options
from appliance.audit.export import verify_export
from appliance.audit.verify import ChainBroken

EXIT_BROKEN = 1
FILTERS = [
    click.option("--since", help="Only events at or after this RFC 3339 time."),
    click.option("--until", help="Only events before this RFC 3339 time."),
]


@admin.group("audit")
def audit_group() -> None:
    """Search, verify and export the audit trail of the session's org."""


def event_line(event: dict[str, Any]) -> str:
    reason = f" ({event['failure_reason']})" if event["failure_reason"] else ""
    return (
        f"{event['seq']:>6} {event['occurred_at']} {event['plane']:<10} {event['event_type']:<32} "
        f"{event['actor']} -> {event['subject']} {event['outcome']}{reason}"
    )


@audit_group.command("events")
@FILTERS[0]
@FILTERS[1]
@click.option("--actor", help="Only events by this actor.")
@click.option("--event-type", help="Only events of this type, e.g. user.created.")
@click.option("--subject", help="Only events about this subject.")
@click.option("--after-seq", type=int, default=0, help="Only events after this sequence number.")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@admin_options
def audit_events(
    cli: Cli,
    since: str | None,
    until: str | None,
    actor: str | None,
    event_type: str | None,
    subject: str | None,
    after_seq: int,
    limit: int,
) -> None:
    """Search events by time, actor, event type and subject."""
    query = {
        "since": since,
        "until": until,
        "actor": actor,
        "event_type": event_type,
        "subject": subject,
        "after_seq": after_seq,
        "limit": limit,
    }
    cli.emit(
        cli.client.call("GET", cli.org_path("audit", "events"), query=query),
        lambda r: "\n".join(event_line(e) for e in r["events"]) or "no events",
    )


@audit_group.command("verify")
@admin_options
def audit_verify(cli: Cli) -> None:
    """Verify the org's hash chain on the server; exit 1 if it is broken."""
    result = cli.client.call("GET", cli.org_path("audit", "verify"))
    cli.emit(
        result,
        lambda r: (
            f"{cli.session.org}: ok, {r['events']} events, chain verified"
            if r["verified"]
            else f"{cli.session.org}: BROKEN at seq {r['broken_at_seq']}: {r['reason']}"
        ),
    )
    if not result["verified"]:
        sys.exit(EXIT_BROKEN)


@audit_group.command("export")
@FILTERS[0]
@FILTERS[1]
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write the JSON lines to (mode 0600; '-' for standard output).",
)
@admin_options
def audit_export(cli: Cli, since: str | None, until: str | None, out: Path) -> None:
    """Export events as JSON lines, then verify the exported chain offline."""
    chunks = cli.client.stream(
        cli.org_path("audit", "export"), query={"since": since, "until": until}
    )
    if str(out) == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        for chunk in chunks:
            file.write(chunk)
    try:
        with out.open(encoding="utf-8") as file:
            report = verify_export(file)
    except ChainBroken as error:
        raise click.ClickException(f"exported chain does not verify: {error}") from None
    summary = {
        "file": str(out),
        "events": report.events,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "anchored_at_genesis": report.anchored,
        "gaps": report.gaps,
        "last_hash": report.last_hash,
    }
    cli.emit(
        summary,
        lambda s: (
            f"exported {s['events']} events to {out}; chain verified"
            + (" from genesis" if s["anchored_at_genesis"] else " (not from seq 1)")
            + (f"; gaps {s['gaps']}" if s["gaps"] else "")
        ),
    )
