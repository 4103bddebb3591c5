"""Security alerts of the break-glass plane, delivered by the plane itself.

Every activation, and every failure that locks an account, is announced to
the org's alert targets (webhooks; JSON or Slack format, signed with
HMAC-SHA256 as described in `appliance.notify.webhooks`):

- with PostgreSQL up, the alert rows commit in the activation's transaction
  and an advisory-locked job sends them, with retries and backoff, until
  delivered or dead-lettered;
- with PostgreSQL down, the targets come from the snapshot, the alerts are
  written in the activation's journal entry, and an in-process loop sends
  them, writing each attempt's outcome to the journal. When PostgreSQL
  returns, replay stores them in `breakglass_alerts` with that outcome, and
  undelivered ones continue under the job.

The delivery id (`X-Appliance-Delivery`) is derived from the event and the
target, so it stays the same across retries and across both paths, and a
receiver can drop a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import asyncpg
from nacl.public import PrivateKey

from appliance.audit.chain import AuditEvent, append
from appliance.breakglass.journal import Journal, JournalEntry
from appliance.db.queries.breakglass_alerts import ALERT_RECORD_ATTEMPT, ALERTS_DUE, ALERTS_ENQUEUE
from appliance.db.queries.jobs import JOB_ORG_IDS
from appliance.db.tenancy import set_org
from appliance.jobs import Job, JobContext
from appliance.keys.sealing import unseal
from appliance.log import log_fields
from appliance.notify.delivery import MAX_ATTEMPTS, Sender, SendResult, backoff_seconds
from appliance.notify.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    render_body,
    signature,
)

log = logging.getLogger("appliance.breakglass.alerts")

ACTIVATED: Final = "breakglass.activated"
ACCOUNT_LOCKED: Final = "breakglass.account_locked"
JOB_NAME: Final = "breakglass.alerts.deliver"
JOB_INTERVAL_SECONDS: Final = 2.0
BATCH_SIZE: Final = 20
DELIVERY_NAMESPACE: Final = uuid.UUID("6f1c0b1e-5b1a-4d8e-9b7a-2f0c6a4e9d31")


def delivery_id(event_id: str | UUID, target_id: str | UUID) -> str:
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}/{target_id}"))


async def send_alert(
    sender: Sender,
    seal_key: PrivateKey,
    *,
    url: str,
    secret_sealed: bytes,
    payload_format: str,
    event_id: UUID,
    target_id: str | UUID,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    created_at: datetime,
    now: datetime,
) -> SendResult:
    body = render_body(
        payload_format,
        event_id=event_id,
        event_type=event_type,
        subject=subject,
        data=data,
        created_at=created_at,
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "appliance-breakglass-alerts",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id(event_id, target_id),
        SIGNATURE_HEADER: signature(unseal(seal_key, secret_sealed), int(now.timestamp()), body),
    }
    return await sender.post(url, body, headers)


async def enqueue_alerts(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    event_id: UUID,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Store one pending alert per enabled target, in the caller's transaction."""
    await conn.execute(
        ALERTS_ENQUEUE, org_id, event_id, event_type, subject, json.dumps(data, sort_keys=True), now
    )


def alerts_job(seal_key: PrivateKey, sender: Sender) -> Job:
    """Build the job that sends due alerts of every org, under its advisory lock."""

    async def run(ctx: JobContext) -> int:
        handled = 0
        for org in await ctx.conn.fetch(JOB_ORG_IDS):
            await set_org(ctx.conn, org["id"])
            for row in await ctx.conn.fetch(ALERTS_DUE, org["id"], ctx.now, BATCH_SIZE):
                await _deliver_row(ctx, org["id"], row, seal_key, sender)
                handled += 1
        return handled

    return Job(JOB_NAME, JOB_INTERVAL_SECONDS, run)


async def _deliver_row(
    ctx: JobContext, org_id: UUID, row: Any, seal_key: PrivateKey, sender: Sender
) -> None:
    payload = row["payload"]
    result = await send_alert(
        sender,
        seal_key,
        url=row["url"],
        secret_sealed=bytes(row["secret_sealed"]),
        payload_format=row["payload_format"],
        event_id=row["event_id"],
        target_id=row["target_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        data=json.loads(payload) if isinstance(payload, str) else payload,
        created_at=row["created_at"],
        now=ctx.now,
    )
    attempts = row["attempts"] + 1
    status, next_attempt = _next_state(result, attempts, ctx.now)
    await ctx.conn.execute(
        ALERT_RECORD_ATTEMPT,
        row["id"],
        status,
        attempts,
        next_attempt,
        ctx.now,
        result.status,
        result.error,
    )
    _log_attempt(
        status, row["event_type"], str(row["event_id"]), str(row["target_id"]), attempts, result
    )
    if status == "dead":
        await append(
            ctx.conn,
            org_id,
            AuditEvent(
                event_type="breakglass.alert_dead",
                plane="breakglass",
                actor="appliance",
                subject=row["subject"],
                outcome="failure",
                occurred_at=ctx.now,
                failure_reason="delivery_attempts_exhausted",
                data={
                    "event_id": str(row["event_id"]),
                    "target_id": str(row["target_id"]),
                    "attempts": attempts,
                },
            ),
        )


def _next_state(result: SendResult, attempts: int, now: datetime) -> tuple[str, datetime]:
    if result.delivered:
        return "delivered", now
    if attempts >= MAX_ATTEMPTS:
        return "dead", now
    return "pending", now + timedelta(seconds=backoff_seconds(attempts))


def _log_attempt(
    status: str, event_type: str, event_id: str, target_id: str, attempts: int, result: SendResult
) -> None:
    fields = log_fields(
        event_type=event_type,
        event_id=event_id,
        target_id=target_id,
        attempts=attempts,
        http_status=result.status,
        error=result.error,
    )
    if status == "pending":
        log.warning("alert delivery failed; will retry", extra=fields)
    elif status == "dead":
        log.error("alert dead-lettered after its last attempt", extra=fields)


@dataclass
class PendingAlert:
    org_id: str
    event_id: str
    target: dict[str, Any]
    event_type: str
    subject: str
    data: dict[str, Any]
    created_at: float
    attempts: int = 0
    next_attempt_at: float = 0.0
    status: str = "pending"


class OfflineAlerts:
    """Alerts written to the journal while PostgreSQL is down, sent from memory."""

    def __init__(self, journal: Journal, seal_key: PrivateKey, sender: Sender) -> None:
        self.journal = journal
        self.seal_key = seal_key
        self.sender = sender
        self.alerts: dict[tuple[str, str], PendingAlert] = {}

    def load(self, entries: list[JournalEntry], replayed_through: int) -> None:
        """Rebuild the queue from unreplayed journal entries and their recorded attempts."""
        for entry in entries:
            if entry.seq <= replayed_through:
                continue
            if entry.kind == "audit":
                self.add(entry)
            elif entry.kind == "alert_result":
                key = (entry.body["event_id"], entry.body["target_id"])
                if key in self.alerts:
                    self.alerts[key].attempts = int(entry.body["attempts"])
                    self.alerts[key].status = str(entry.body["status"])
                    self.alerts[key].next_attempt_at = float(entry.body["next_attempt_at"])

    def add(self, entry: JournalEntry) -> None:
        event = entry.body.get("event", {})
        for target in entry.body.get("alerts", []):
            self.alerts[(entry.event_id, target["id"])] = PendingAlert(
                org_id=entry.org_id,
                event_id=entry.event_id,
                target=target,
                event_type=entry.body["alert_type"],
                subject=event.get("subject", ""),
                data=event.get("data", {}),
                created_at=float(event.get("occurred_at", 0)),
            )

    def forget(self, event_ids: set[str]) -> None:
        """Drop alerts whose events were replayed: the database job owns them now."""
        self.alerts = {k: v for k, v in self.alerts.items() if k[0] not in event_ids}

    def outcomes(self) -> dict[tuple[str, str], PendingAlert]:
        return dict(self.alerts)

    async def deliver_due(self, now: datetime) -> int:
        sent = 0
        for (event_id, target_id), alert in list(self.alerts.items()):
            if alert.status != "pending" or alert.next_attempt_at > now.timestamp():
                continue
            result = await send_alert(
                self.sender,
                self.seal_key,
                url=alert.target["url"],
                secret_sealed=bytes.fromhex(alert.target["secret_sealed"]),
                payload_format=alert.target["payload_format"],
                event_id=UUID(event_id),
                target_id=target_id,
                event_type=alert.event_type,
                subject=alert.subject,
                data=alert.data,
                created_at=datetime.fromtimestamp(alert.created_at, UTC),
                now=now,
            )
            alert.attempts += 1
            alert.status, next_attempt = _next_state(result, alert.attempts, now)
            alert.next_attempt_at = next_attempt.timestamp()
            await asyncio.to_thread(
                self.journal.append,
                "alert_result",
                alert.org_id,
                {
                    "event_id": event_id,
                    "target_id": target_id,
                    "status": alert.status,
                    "attempts": alert.attempts,
                    "next_attempt_at": alert.next_attempt_at,
                    "http_status": result.status,
                },
            )
            _log_attempt(
                alert.status, alert.event_type, event_id, target_id, alert.attempts, result
            )
            sent += 1
        return sent
