"""Audit helpers of the PIM plane, and the rejection that is audited before it is raised."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from appliance.audit.chain import AuditEvent, append
from appliance.errors import ApiError

PLANE: Final = "pim"


class Rejected(Exception):
    """A rule stopped the call: `error` goes to the client, `reason` to the audit chain.

    Raised inside `PimService.guarded`, which rolls back the call's changes,
    appends the failure event, commits, and then raises `error`.
    """

    def __init__(
        self,
        error: ApiError,
        *,
        event_type: str,
        actor: str,
        subject: str,
        reason: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.error = error
        self.event_type = event_type
        self.actor = actor
        self.subject = subject
        self.reason = reason
        self.data = data or {}

    def event(self, now: datetime, source: str | None = None) -> AuditEvent:
        return AuditEvent(
            event_type=self.event_type,
            plane=PLANE,
            actor=self.actor,
            subject=self.subject,
            outcome="failure",
            occurred_at=now,
            failure_reason=self.reason,
            source=source,
            data=self.data,
        )


async def audit(
    conn: asyncpg.Connection,
    org_id: UUID,
    event_type: str,
    *,
    actor: str,
    subject: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """Append a successful PIM step to the org's chain in the current transaction."""
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type=event_type,
            plane=PLANE,
            actor=actor,
            subject=subject,
            outcome="success",
            occurred_at=now,
            data=data or {},
        ),
    )
