"""Export of an org's audit chain as JSON lines, and offline verification of an export.

Each line is one event with every field its hash covers, plus `prev_hash`
and `hash` in hex, so a reader without database access can recompute each
link. An export filtered by time may skip sequence numbers. Verification
then proves each event's own hash and every link between consecutive
sequence numbers, and reports the gaps. Only an export that starts at seq 1
is anchored to the chain's genesis.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.audit.chain import GENESIS_HASH, AuditEvent, chain_hash, format_time
from appliance.audit.verify import ChainBroken
from appliance.db.queries.admin import ADMIN_AUDIT_SEARCH

PAGE_SIZE = 500
EXPORT_FIELDS = (
    "org_id",
    "seq",
    "event_id",
    "occurred_at",
    "plane",
    "event_type",
    "actor",
    "subject",
    "outcome",
    "failure_reason",
    "source",
    "data",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    event_type: str | None = None
    subject: str | None = None


def event_record(org_id: UUID, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """Build one exported event: the hashed fields, with times in the chain's own format."""
    data = row["data"]
    return {
        "org_id": str(org_id),
        "seq": row["seq"],
        "event_id": str(row["event_id"]),
        "occurred_at": format_time(row["occurred_at"]),
        "plane": row["plane"],
        "event_type": row["event_type"],
        "actor": row["actor"],
        "subject": row["subject"],
        "outcome": row["outcome"],
        "failure_reason": row["failure_reason"],
        "source": row["source"],
        "data": json.loads(data) if isinstance(data, str) else data,
        "prev_hash": bytes(row["prev_hash"]).hex(),
        "hash": bytes(row["hash"]).hex(),
    }


async def search_events(
    conn: asyncpg.Connection,
    org_id: UUID,
    selection: AuditFilter,
    *,
    after_seq: int = 0,
    limit: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Events of the org after `after_seq` that match `selection`, in chain order."""
    rows = await conn.fetch(
        ADMIN_AUDIT_SEARCH,
        org_id,
        after_seq,
        selection.since,
        selection.until,
        selection.actor,
        selection.event_type,
        selection.subject,
        limit,
    )
    return [event_record(org_id, row) for row in rows]


async def export_lines(
    org_id: UUID,
    selection: AuditFilter,
    *,
    open_page: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
) -> AsyncIterator[str]:
    """Yield the org's matching events as JSON lines, one page per `open_page()` transaction.

    `open_page()` returns an async context manager that yields a connection
    with the org context set. Rows never change once written, so a page per
    transaction gives a consistent export.
    """
    after_seq = 0
    while True:
        async with open_page() as conn:
            page = await search_events(conn, org_id, selection, after_seq=after_seq)
        for record in page:
            yield json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        if len(page) < PAGE_SIZE:
            return
        after_seq = page[-1]["seq"]


@dataclass
class ExportReport:
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    anchored: bool = False
    last_hash: str | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)


def _event(record: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        event_type=record["event_type"],
        plane=record["plane"],
        actor=record["actor"],
        subject=record["subject"],
        outcome=record["outcome"],
        occurred_at=datetime.fromisoformat(record["occurred_at"].replace("Z", "+00:00")),
        failure_reason=record["failure_reason"],
        source=record["source"],
        data=record["data"],
        event_id=UUID(record["event_id"]),
    )


def parse_line(number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ChainBroken(0, f"line {number} is not JSON: {error.msg}") from None
    if not isinstance(record, dict) or set(record) != set(EXPORT_FIELDS):
        raise ChainBroken(
            0, f"line {number} does not have exactly the fields {', '.join(EXPORT_FIELDS)}"
        )
    return record


def verify_export(lines: Iterable[str]) -> ExportReport:
    """Recompute every hash of an exported chain; raise `ChainBroken` at the first bad event."""
    report = ExportReport()
    previous: dict[str, Any] | None = None
    org: str | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = parse_line(number, line)
        seq = record["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ChainBroken(0, f"line {number}: seq {seq!r} is not a positive integer")
        if org is None:
            org = record["org_id"]
        elif record["org_id"] != org:
            raise ChainBroken(seq, f"line {number} belongs to org {record['org_id']}, not {org}")
        try:
            prev_hash = bytes.fromhex(record["prev_hash"])
            expected = chain_hash(prev_hash, UUID(record["org_id"]), seq, _event(record))
            stored = bytes.fromhex(record["hash"])
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ChainBroken(seq, f"line {number} has a malformed field: {error}") from None
        if expected != stored:
            raise ChainBroken(seq, "content does not match its hash (event altered)")
        if seq == 1 and prev_hash != GENESIS_HASH:
            raise ChainBroken(seq, "the first event does not link to the genesis hash")
        if previous is None:
            report.first_seq = seq
            report.anchored = seq == 1 and prev_hash == GENESIS_HASH
        elif seq <= previous["seq"]:
            raise ChainBroken(seq, f"out of order: seq {seq} follows seq {previous['seq']}")
        elif seq == previous["seq"] + 1:
            if record["prev_hash"] != previous["hash"]:
                raise ChainBroken(seq, "prev_hash does not match the previous event's hash")
        else:
            report.gaps.append((previous["seq"] + 1, seq - 1))
        previous = record
        report.events += 1
        report.last_seq = seq
        report.last_hash = record["hash"]
    return report


async def export_org(
    conn: asyncpg.Connection, org_name: str, selection: AuditFilter
) -> AsyncIterator[str]:
    """Yield the JSON lines of org `org_name` over one connection (CLI with database access).

    Raises `LookupError` when the org does not exist.
    """
    from contextlib import asynccontextmanager

    from appliance.db.queries.orgs import ORG_BY_NAME
    from appliance.db.tenancy import set_org

    row = await conn.fetchrow(ORG_BY_NAME, org_name)
    if row is None:
        raise LookupError(f"org {org_name!r} not found")
    org_id: UUID = row["id"]

    @asynccontextmanager
    async def page() -> AsyncIterator[asyncpg.Connection]:
        async with conn.transaction(readonly=True):
            await set_org(conn, org_id)
            yield conn

    async for line in export_lines(org_id, selection, open_page=page):
        yield line
