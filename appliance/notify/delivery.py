"""Webhook delivery: the job that drains the outbox, with retries and a dead letter.

A delivery that fails (no connection, timeout, or a status outside 2xx) is
retried after `BACKOFF_BASE_SECONDS * 2**(attempts-1)`, at most
`BACKOFF_MAX_SECONDS`. After `MAX_ATTEMPTS` attempts it is marked `dead`,
logged and audited, and never sent again. With the defaults a receiver that
is down for up to about 40 minutes still gets every event.

The job runs under its advisory lock (appliance/jobs.py) and holds that
transaction while it sends, so two replicas never send one delivery at the
same time. Each send has its own timeout and a run sends at most
`BATCH_SIZE` deliveries per org, which keeps the transaction short.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol
from uuid import UUID

from nacl.public import PrivateKey

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.jobs import JOB_ORG_IDS
from appliance.db.queries.notify import NOTIFY_DELIVERIES_DUE, NOTIFY_DELIVERY_RECORD
from appliance.db.tenancy import set_org
from appliance.jobs import Job, JobContext
from appliance.keys.sealing import unseal
from appliance.log import log_fields
from appliance.notify.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    render_body,
    signature,
)

log = logging.getLogger("appliance.notify")

MAX_ATTEMPTS: Final = 8
BACKOFF_BASE_SECONDS: Final = 10
BACKOFF_MAX_SECONDS: Final = 3600
BATCH_SIZE: Final = 20
SEND_TIMEOUT_SECONDS: Final = 5.0
DELIVERY_JOB_INTERVAL_SECONDS: Final = 5.0


@dataclass(frozen=True)
class SendResult:
    status: int | None  # HTTP status, or None when no response arrived
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery: following it would send the signed body elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibSender:
    """Sends with the standard library in a worker thread, without following redirects."""

    def __init__(self, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return SendResult(response.status)
        except urllib.error.HTTPError as error:
            return SendResult(error.code, f"HTTP {error.code}")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return SendResult(None, f"{type(error).__name__}: {reason}"[:300])

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        return await asyncio.to_thread(self._post, url, body, headers)


def backoff_seconds(attempts: int) -> int:
    """Delay before the next attempt after `attempts` failed ones."""
    return int(min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS))


def delivery_job(
    seal_key: PrivateKey, sender: Sender, *, plane: str = "pim", name: str = "notify.deliver"
) -> Job:
    """Return the job that sends due deliveries of every org."""

    async def run(ctx: JobContext) -> int:
        handled = 0
        for org in await ctx.conn.fetch(JOB_ORG_IDS):
            await set_org(ctx.conn, org["id"])
            rows = await ctx.conn.fetch(NOTIFY_DELIVERIES_DUE, org["id"], ctx.now, BATCH_SIZE)
            for row in rows:
                await _deliver(ctx, org["id"], row, seal_key, sender, plane)
                handled += 1
        return handled

    return Job(name, DELIVERY_JOB_INTERVAL_SECONDS, run)


async def _deliver(
    ctx: JobContext, org_id: UUID, row: Any, seal_key: PrivateKey, sender: Sender, plane: str
) -> None:
    payload = row["payload"]
    data = json.loads(payload) if isinstance(payload, str) else payload
    body = render_body(
        row["payload_format"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        data=data,
        created_at=row["created_at"],
    )
    secret = unseal(seal_key, bytes(row["secret_sealed"]))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "appliance-webhooks",
        EVENT_HEADER: row["event_type"],
        DELIVERY_HEADER: str(row["id"]),
        SIGNATURE_HEADER: signature(secret, int(ctx.now.timestamp()), body),
    }
    result = await sender.post(row["url"], body, headers)
    attempts = row["attempts"] + 1
    if result.delivered:
        status, next_attempt = "delivered", ctx.now
    elif attempts >= MAX_ATTEMPTS:
        status, next_attempt = "dead", ctx.now
    else:
        status, next_attempt = "pending", ctx.now + timedelta(seconds=backoff_seconds(attempts))
    await ctx.conn.execute(
        NOTIFY_DELIVERY_RECORD,
        row["id"],
        status,
        attempts,
        next_attempt,
        ctx.now,
        result.status,
        result.error,
    )
    fields = log_fields(
        delivery_id=str(row["id"]),
        webhook_id=str(row["webhook_id"]),
        event_type=row["event_type"],
        attempts=attempts,
        http_status=result.status,
        error=result.error,
    )
    if status == "pending":
        log.warning("webhook delivery failed; will retry", extra=fields)
    elif status == "dead":
        log.error("webhook delivery dead-lettered after its last attempt", extra=fields)
        await _audit_dead(ctx, org_id, row, attempts, result, plane)


async def _audit_dead(
    ctx: JobContext, org_id: UUID, row: Any, attempts: int, result: SendResult, plane: str
) -> None:
    await append(
        ctx.conn,
        org_id,
        AuditEvent(
            event_type="notify.delivery_dead",
            plane=plane,
            actor="system",
            subject=str(row["webhook_id"]),
            outcome="failure",
            occurred_at=ctx.now,
            failure_reason="max_attempts",
            data={
                "delivery_id": str(row["id"]),
                "event_type": row["event_type"],
                "event_id": str(row["event_id"]),
                "attempts": attempts,
                "http_status": result.status,
                "error": result.error,
            },
        ),
    )
