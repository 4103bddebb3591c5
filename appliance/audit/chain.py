"""Append-only, per-org hash chain of security events.

Each event's hash is SHA-256 over the previous hash and a canonical JSON
encoding of the event (sorted keys, no whitespace, UTC timestamps with
microseconds). Appends lock the org's head row, so concurrent appends are
serialised and the chain has no forks. An append happens in the caller's
transaction: the event commits or rolls back with the change it records.
Each event is also written as one JSON log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.db.queries.audit import (
    AUDIT_EVENT_INSERT,
    AUDIT_HEAD_ADVANCE,
    AUDIT_HEAD_ENSURE,
    AUDIT_HEAD_LOCK,
)
from appliance.log import log_fields

log = logging.getLogger("appliance.audit")

GENESIS_HASH = bytes(32)


@dataclass(frozen=True)
class AuditEvent:
    event_type: str
    plane: str
    actor: str
    subject: str
    outcome: str  # "success" or "failure"
    occurred_at: datetime
    failure_reason: str | None = None
    source: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    event_id: UUID = field(default_factory=uuid.uuid4)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(org_id: UUID, seq: int, event: AuditEvent) -> bytes:
    body = {
        "org_id": str(org_id),
        "seq": seq,
        "event_id": str(event.event_id),
        "occurred_at": format_time(event.occurred_at),
        "plane": event.plane,
        "event_type": event.event_type,
        "actor": event.actor,
        "subject": event.subject,
        "outcome": event.outcome,
        "failure_reason": event.failure_reason,
        "source": event.source,
        "data": event.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: bytes, org_id: UUID, seq: int, event: AuditEvent) -> bytes:
    return hashlib.sha256(prev_hash + canonical_bytes(org_id, seq, event)).digest()


async def append(conn: asyncpg.Connection, org_id: UUID, event: AuditEvent) -> int:
    """Append `event` to the org's chain in the current transaction; return its sequence number."""
    if not conn.is_in_transaction():
        raise RuntimeError("audit append must run inside the transaction of the change it records")
    await conn.execute(AUDIT_HEAD_ENSURE, org_id, GENESIS_HASH)
    head = await conn.fetchrow(AUDIT_HEAD_LOCK, org_id)
    if head is None:
        raise RuntimeError(f"audit head of org {org_id} is not visible: is the org context set?")
    seq: int = head["seq"] + 1
    prev_hash = bytes(head["hash"])
    digest = chain_hash(prev_hash, org_id, seq, event)
    await conn.execute(
        AUDIT_EVENT_INSERT,
        org_id,
        seq,
        event.event_id,
        event.occurred_at,
        event.plane,
        event.event_type,
        event.actor,
        event.subject,
        event.outcome,
        event.failure_reason,
        event.source,
        json.dumps(event.data, sort_keys=True),
        prev_hash,
        digest,
    )
    await conn.execute(AUDIT_HEAD_ADVANCE, org_id, seq, digest)
    log.info(
        "audit event",
        extra=log_fields(
            audit_event=event.event_type,
            event_id=str(event.event_id),
            org_id=str(org_id),
            seq=seq,
            plane=event.plane,
            actor=event.actor,
            subject=event.subject,
            outcome=event.outcome,
            failure_reason=event.failure_reason,
            data=event.data,
        ),
    )
    return seq
