"""The transactional outbox: events commit with the change they report.

`enqueue` runs in the caller's transaction. It stores the event and creates
one pending delivery per enabled webhook subscribed to its type, so an event
is delivered if and only if its change committed. The delivery job
(`appliance.notify.delivery`) sends them later, with retries.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from appliance.db.queries.notify import NOTIFY_DELIVERIES_CREATE, NOTIFY_OUTBOX_INSERT

REQUEST_CREATED: Final = "pim.request.created"
REQUEST_APPROVED: Final = "pim.request.approved"
REQUEST_DENIED: Final = "pim.request.denied"
REQUEST_CANCELLED: Final = "pim.request.cancelled"
REQUEST_EXPIRED: Final = "pim.request.expired"
GRANT_ACTIVATED: Final = "pim.grant.activated"
GRANT_EXPIRING_SOON: Final = "pim.grant.expiring_soon"
GRANT_REVOKED: Final = "pim.grant.revoked"
GRANT_RELINQUISHED: Final = "pim.grant.relinquished"
GRANT_ENDED: Final = "pim.grant.ended"

EVENT_TYPES: Final = frozenset(
    {
        REQUEST_CREATED,
        REQUEST_APPROVED,
        REQUEST_DENIED,
        REQUEST_CANCELLED,
        REQUEST_EXPIRED,
        GRANT_ACTIVATED,
        GRANT_EXPIRING_SOON,
        GRANT_REVOKED,
        GRANT_RELINQUISHED,
        GRANT_ENDED,
    }
)
# The events a webhook receives when it names none: those that approvers and
# requesters act on.
DEFAULT_EVENTS: Final = (
    REQUEST_CREATED,
    REQUEST_APPROVED,
    REQUEST_DENIED,
    GRANT_ACTIVATED,
    GRANT_EXPIRING_SOON,
    GRANT_REVOKED,
)


async def enqueue(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    now: datetime,
) -> UUID:
    """Store an event and its pending deliveries in the caller's transaction."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown notification event type {event_type!r}")
    if not conn.is_in_transaction():
        raise RuntimeError("enqueue must run inside the transaction of the change it reports")
    event_id: UUID = await conn.fetchval(
        NOTIFY_OUTBOX_INSERT, org_id, event_type, subject, json.dumps(data, sort_keys=True), now
    )
    await conn.execute(NOTIFY_DELIVERIES_CREATE, org_id, event_id, event_type, now)
    return event_id
