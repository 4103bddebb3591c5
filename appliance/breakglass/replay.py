"""Replay of the journal into PostgreSQL once the database is back.

Entries are replayed in journal order, each in its own transaction that
appends the audit event (with its original `event_id` and time) and applies
its effects to the account. An entry whose `event_id` is already in the
audit chain is skipped, so a replay killed after a commit but before the
cursor moved replays nothing twice. The cursor moves after each commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.audit.chain import GENESIS_HASH, AuditEvent, append
from appliance.breakglass.alerts import PendingAlert
from appliance.breakglass.journal import Journal, JournalEntry
from appliance.db.queries.audit import AUDIT_EVENT_EXISTS, AUDIT_HEAD_ENSURE, AUDIT_HEAD_LOCK
from appliance.db.queries.breakglass import ACCOUNT_REPLAY_EFFECTS, CUSTODIAN_RECORD_STEP
from appliance.db.queries.breakglass_alerts import ALERT_RECORD_REPLAYED
from appliance.db.tenancy import org_transaction
from appliance.log import log_fields

log = logging.getLogger("appliance.breakglass.replay")


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value is not None else None


async def replay_entry(
    conn: asyncpg.Connection, entry: JournalEntry, alerts: Mapping[tuple[str, str], PendingAlert]
) -> bool:
    """Apply one entry in the caller's org transaction; return False if it was already there."""
    org_id = UUID(entry.org_id)
    event_id = UUID(entry.event_id)
    # Lock the chain head first: it serialises this check with any other append.
    await conn.execute(AUDIT_HEAD_ENSURE, org_id, GENESIS_HASH)
    await conn.fetchrow(AUDIT_HEAD_LOCK, org_id)
    if await conn.fetchval(AUDIT_EVENT_EXISTS, org_id, event_id):
        return False
    event = entry.body["event"]
    effects = entry.body.get("effects")
    if isinstance(effects, dict) and effects.get("account_id"):
        account_id = UUID(effects["account_id"])
        await conn.execute(
            ACCOUNT_REPLAY_EFFECTS,
            account_id,
            int(effects.get("last_totp_step") or 0),
            effects.get("failed_attempts"),
            _timestamp(effects.get("locked_until")),
            _timestamp(effects.get("activated_at")),
        )
        if effects.get("second_last_step"):
            await conn.execute(
                CUSTODIAN_RECORD_STEP, account_id, 2, int(effects["second_last_step"])
            )
    for target in entry.body.get("alerts", []):
        await _replay_alert(conn, entry, target, alerts.get((entry.event_id, target["id"])))
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type=event["event_type"],
            plane=event["plane"],
            actor=event["actor"],
            subject=event["subject"],
            outcome=event["outcome"],
            occurred_at=datetime.fromtimestamp(float(event["occurred_at"]), UTC),
            failure_reason=event["failure_reason"],
            source=event["source"],
            data={**event["data"], "journal_seq": entry.seq},
            event_id=event_id,
        ),
    )
    return True


async def _replay_alert(
    conn: asyncpg.Connection,
    entry: JournalEntry,
    target: dict[str, Any],
    outcome: PendingAlert | None,
) -> None:
    """Store an alert of the entry with the outcome of its offline attempts, if any."""
    event = entry.body["event"]
    occurred_at = datetime.fromtimestamp(float(event["occurred_at"]), UTC)
    status = outcome.status if outcome else "pending"
    next_attempt = datetime.fromtimestamp(outcome.next_attempt_at, UTC) if outcome else occurred_at
    await conn.execute(
        ALERT_RECORD_REPLAYED,
        UUID(entry.org_id),
        UUID(entry.event_id),
        entry.body["alert_type"],
        event["subject"],
        json.dumps(event["data"], sort_keys=True),
        occurred_at,
        next_attempt,
        status,
        outcome.attempts if outcome else 0,
        UUID(target["id"]),
    )


async def replay_journal(
    pool: asyncpg.Pool,
    journal: Journal,
    alerts: Mapping[tuple[str, str], PendingAlert] | None = None,
) -> ReplayResult:
    """Replay every entry after the cursor, with the offline outcome of each alert."""
    start = journal.replayed_through()
    pending = [
        entry for entry in await asyncio.to_thread(list, journal.entries()) if entry.seq > start
    ]
    applied = 0
    for entry in pending:
        if entry.kind == "audit":
            async with org_transaction(pool, UUID(entry.org_id)) as conn:
                applied += await replay_entry(conn, entry, alerts or {})
        await asyncio.to_thread(journal.mark_replayed, entry.seq)
    if pending:
        log.info(
            "journal replayed",
            extra=log_fields(entries=len(pending), applied=applied, through_seq=pending[-1].seq),
        )
    return ReplayResult(applied, {entry.event_id for entry in pending if entry.kind == "audit"})


@dataclass(frozen=True)
class ReplayResult:
    applied: int
    event_ids: set[str]
