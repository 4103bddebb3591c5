"""Audit events for admin changes: actor, org, subject, and non-secret before/after.

Each change appends its event in the transaction that makes the change, so
the two commit or roll back together. Callers pass only non-secret fields:
never a password, passphrase, TOTP seed or token, not even hashed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.admin.service import PLANE, Call
from appliance.audit.chain import AuditEvent, append


def jsonable(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """Copy `fields` with times as RFC 3339 strings and UUIDs as strings."""
    if fields is None:
        return None
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, datetime):
            out[name] = value.isoformat()
        elif isinstance(value, (str, int, float, bool, list, dict)) or value is None:
            out[name] = value
        else:
            out[name] = str(value)
    return out


async def record_change(
    call: Call,
    event_type: str,
    subject: str,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Append `event_type` about `subject` to the caller's org chain; return its seq."""
    return await append_change(
        call.conn,
        call.org_id,
        actor=call.actor,
        now=call.now,
        event_type=event_type,
        subject=subject,
        before=before,
        after=after,
        extra=extra,
    )


async def append_change(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    actor: str,
    now: datetime,
    event_type: str,
    subject: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Append a change event to the chain of `org_id`, whose context `conn` must have set."""
    data: dict[str, Any] = {"before": jsonable(before), "after": jsonable(after)}
    if extra:
        data.update(jsonable(extra) or {})
    return await append(
        conn,
        org_id,
        AuditEvent(
            event_type=event_type,
            plane=PLANE,
            actor=actor,
            subject=subject,
            outcome="success",
            occurred_at=now,
            data=data,
        ),
    )
