"""Approve, deny, cancel and revoke: every change of a request after its creation.

Each function runs in the caller's org transaction and starts by locking the
request row (`SELECT ... FOR UPDATE`), so concurrent calls on one request
take turns and each sees the outcome of the one before: a request is
decided once, and a revoked grant stays revoked. A rule that stops the call
raises `Rejected`, which the service audits before answering.

Rules:
- nobody approves or denies their own request (403 `self_approval_forbidden`);
- only an approver of the role decides (others get 404, as if the request
  did not exist);
- each approver decides a request once (409 `already_decided`);
- a request that is no longer pending cannot be decided or cancelled (409
  `request_expired`, `request_cancelled`, `request_denied` or
  `request_already_granted`);
- one denial denies the request; the approval that reaches the policy's
  count grants it, starting at the requested start or now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from appliance.db.queries.pim import (
    PIM_DECISION_BY_APPROVER,
    PIM_DECISION_INSERT,
    PIM_DECISIONS_FOR_REQUEST,
    PIM_IS_APPROVER,
    PIM_REQUEST_END,
    PIM_REQUEST_GET,
    PIM_REQUEST_GRANT,
    PIM_REQUEST_LOCK,
    PIM_REQUEST_SET_STATUS,
)
from appliance.errors import NotFound
from appliance.notify import outbox
from appliance.pim.audit import Rejected, audit
from appliance.pim.errors import Conflict, Forbidden
from appliance.pim.model import GRANTED, PENDING, iso, request_state
from appliance.pim.status_lists import revoke_credentials


@dataclass(frozen=True)
class Actor:
    """The acting user of the org, or an admin or the system when `user_id` is None."""

    user_id: UUID | None
    username: str


def _not_found(request_id: UUID) -> NotFound:
    return NotFound(f"request {request_id} not found, or not visible to you")


async def lock_request(conn: asyncpg.Connection, org_id: UUID, request_id: UUID) -> asyncpg.Record:
    """Lock the request row until the transaction ends, then read it."""
    await conn.execute(PIM_REQUEST_LOCK, org_id, request_id)
    row = await conn.fetchrow(PIM_REQUEST_GET, org_id, request_id)
    if row is None:
        raise _not_found(request_id)
    return row


def event_data(row: asyncpg.Record, **extra: object) -> dict[str, object]:
    """Return the fields of a request that audit events and notifications carry."""
    data: dict[str, object] = {
        "request_id": str(row["id"]),
        "role": row["role"],
        "requester": row["requester"],
        "duration_seconds": row["duration_seconds"],
        "justification": row["justification"],
        "ticket": row["ticket"],
    }
    data.update(extra)
    return data


def _not_pending(
    row: asyncpg.Record, now: datetime, *, actor: str, event_type: str
) -> Rejected | None:
    """Return the rejection for deciding or cancelling a request that is not pending."""
    state = request_state(row, now)
    if state == PENDING:
        return None
    reasons = {
        "expired": ("request_expired", f"expired at {iso(row['expires_at'])} without a decision"),
        "cancelled": (
            "request_cancelled",
            f"was cancelled by its requester at {iso(row['decided_at'])}",
        ),
        "denied": ("request_denied", f"was already denied at {iso(row['decided_at'])}"),
    }
    code, why = reasons.get(
        state, ("request_already_granted", f"was already approved at {iso(row['decided_at'])}")
    )
    return Rejected(
        Conflict(code, f"request {row['id']} {why}; nothing was changed"),
        event_type=event_type,
        actor=actor,
        subject=str(row["id"]),
        reason=code,
        data=event_data(row, state=state),
    )


async def decide(
    conn: asyncpg.Connection,
    org_id: UUID,
    request_id: UUID,
    *,
    actor: Actor,
    approve: bool,
    comment: str,
    now: datetime,
) -> asyncpg.Record:
    """Record an approver's decision; grant or deny the request when it is decided."""
    event_type = "pim.request.approval" if approve else "pim.request.denial"
    row = await lock_request(conn, org_id, request_id)
    is_approver = await conn.fetchval(PIM_IS_APPROVER, org_id, row["role_id"], actor.user_id)
    if row["requester_id"] == actor.user_id:
        raise Rejected(
            Forbidden(
                "self_approval_forbidden",
                "you cannot approve or deny your own request; "
                "another approver of the role must decide",
            ),
            event_type=event_type,
            actor=actor.username,
            subject=str(request_id),
            reason="self_approval_forbidden",
            data=event_data(row),
        )
    if not is_approver:
        raise Rejected(
            _not_found(request_id),
            event_type=event_type,
            actor=actor.username,
            subject=str(request_id),
            reason="not_an_approver",
            data=event_data(row),
        )
    rejection = _not_pending(row, now, actor=actor.username, event_type=event_type)
    if rejection is not None:
        raise rejection
    previous = await conn.fetchval(PIM_DECISION_BY_APPROVER, request_id, actor.user_id)
    if previous is not None:
        verb = "approved" if previous == "approve" else "denied"
        raise Rejected(
            Conflict(
                "already_decided",
                f"you already {verb} request {request_id}; each approver counts once",
            ),
            event_type=event_type,
            actor=actor.username,
            subject=str(request_id),
            reason="already_decided",
            data=event_data(row),
        )
    await conn.execute(
        PIM_DECISION_INSERT,
        request_id,
        org_id,
        actor.user_id,
        "approve" if approve else "deny",
        comment,
        now,
    )
    decisions = await conn.fetch(PIM_DECISIONS_FOR_REQUEST, org_id, request_id)
    approvers = [d["approver"] for d in decisions if d["decision"] == "approve"]
    await audit(
        conn,
        org_id,
        event_type,
        actor=actor.username,
        subject=str(request_id),
        now=now,
        data=event_data(
            row,
            comment=comment,
            approvals=len(approvers),
            approvals_required=row["approvals_required"],
        ),
    )
    if not approve:
        await conn.execute(PIM_REQUEST_SET_STATUS, request_id, "denied", now)
        data = event_data(row, by=actor.username, comment=comment)
        await audit(
            conn,
            org_id,
            "pim.request.denied",
            actor=actor.username,
            subject=str(request_id),
            now=now,
            data=data,
        )
        await outbox.enqueue(
            conn,
            org_id,
            event_type=outbox.REQUEST_DENIED,
            subject=str(request_id),
            data=data,
            now=now,
        )
    elif len(approvers) >= row["approvals_required"]:
        await grant(conn, org_id, row, approvers=approvers, actor=actor.username, now=now)
    return await lock_request(conn, org_id, request_id)


def grant_window(row: asyncpg.Record, now: datetime) -> tuple[datetime, datetime]:
    """Start and end of the grant approved at `now`.

    With a requested start the grant covers [start, start + duration]; one
    approved after its start begins at once but still ends on time. Without
    one it covers [now, now + duration].
    """
    duration = timedelta(seconds=row["duration_seconds"])
    start = row["requested_start"]
    if start is None:
        return now, now + duration
    return max(start, now), start + duration


async def grant(
    conn: asyncpg.Connection,
    org_id: UUID,
    row: asyncpg.Record,
    *,
    approvers: list[str],
    actor: str,
    now: datetime,
) -> None:
    """Turn a pending request into a grant; activate it now if its start has come."""
    starts_at, ends_at = grant_window(row, now)
    activated_at = now if starts_at <= now else None
    await conn.execute(PIM_REQUEST_GRANT, row["id"], now, starts_at, ends_at, activated_at)
    subject = str(row["id"])
    data = event_data(row, approvers=approvers, starts_at=iso(starts_at), ends_at=iso(ends_at))
    await audit(
        conn, org_id, "pim.request.approved", actor=actor, subject=subject, now=now, data=data
    )
    await outbox.enqueue(
        conn, org_id, event_type=outbox.REQUEST_APPROVED, subject=subject, data=data, now=now
    )
    if activated_at is not None:
        await audit(
            conn, org_id, "pim.grant.activated", actor=actor, subject=subject, now=now, data=data
        )
        await outbox.enqueue(
            conn, org_id, event_type=outbox.GRANT_ACTIVATED, subject=subject, data=data, now=now
        )


async def cancel(
    conn: asyncpg.Connection, org_id: UUID, request_id: UUID, *, actor: Actor, now: datetime
) -> asyncpg.Record:
    """Withdraw a pending request; only its requester may."""
    row = await lock_request(conn, org_id, request_id)
    if row["requester_id"] != actor.user_id:
        is_approver = await conn.fetchval(PIM_IS_APPROVER, org_id, row["role_id"], actor.user_id)
        error = (
            Forbidden(
                "not_requester",
                "only the requester can cancel a request; approvers deny it instead",
            )
            if is_approver
            else _not_found(request_id)
        )
        raise Rejected(
            error,
            event_type="pim.request.cancel",
            actor=actor.username,
            subject=str(request_id),
            reason="not_requester",
            data=event_data(row),
        )
    rejection = _not_pending(row, now, actor=actor.username, event_type="pim.request.cancel")
    if rejection is not None:
        raise rejection
    await conn.execute(PIM_REQUEST_SET_STATUS, request_id, "cancelled", now)
    data = event_data(row)
    await audit(
        conn,
        org_id,
        "pim.request.cancelled",
        actor=actor.username,
        subject=str(request_id),
        now=now,
        data=data,
    )
    await outbox.enqueue(
        conn,
        org_id,
        event_type=outbox.REQUEST_CANCELLED,
        subject=str(request_id),
        data=data,
        now=now,
    )
    return await lock_request(conn, org_id, request_id)


async def revoke(
    conn: asyncpg.Connection,
    org_id: UUID,
    request_id: UUID,
    *,
    actor: Actor,
    comment: str,
    now: datetime,
    as_admin: bool = False,
) -> asyncpg.Record:
    """End a grant early: revoked by an approver (or an admin), or relinquished by its holder.

    Its credentials are marked revoked in their status lists in the same
    transaction, so they fail verification from the next status list fetch.
    """
    row = await lock_request(conn, org_id, request_id)
    is_requester = row["requester_id"] == actor.user_id and actor.user_id is not None
    may_revoke = (
        as_admin
        or is_requester
        or await conn.fetchval(PIM_IS_APPROVER, org_id, row["role_id"], actor.user_id)
    )
    if not may_revoke:
        raise Rejected(
            _not_found(request_id),
            event_type="pim.grant.revoke",
            actor=actor.username,
            subject=str(request_id),
            reason="not_an_approver",
            data=event_data(row),
        )
    state = request_state(row, now)
    if row["status"] != GRANTED or state == "ended":
        if row["status"] == "ended":
            why = f"already ended at {iso(row['ended_at'])} ({row['end_reason']})"
        elif state == "ended":
            why = f"already ended at {iso(row['ends_at'])} (expired)"
        else:
            why = f"was never granted (it is {state}); cancel or deny a pending request instead"
        raise Rejected(
            Conflict("grant_not_active", f"request {request_id} {why}; nothing was changed"),
            event_type="pim.grant.revoke",
            actor=actor.username,
            subject=str(request_id),
            reason="grant_not_active",
            data=event_data(row, state=state),
        )
    end_reason = "relinquished" if is_requester and not as_admin else "revoked"
    await end_grant(
        conn, org_id, row, end_reason=end_reason, actor=actor.username, comment=comment, now=now
    )
    return await lock_request(conn, org_id, request_id)


async def end_grant(
    conn: asyncpg.Connection,
    org_id: UUID,
    row: asyncpg.Record,
    *,
    end_reason: str,
    actor: str,
    comment: str,
    now: datetime,
) -> None:
    """Mark a locked, granted request ended and revoke its credentials."""
    await conn.execute(PIM_REQUEST_END, row["id"], end_reason, now, actor)
    revoked = await revoke_credentials(conn, row["id"], now=now)
    data = event_data(row, by=actor, comment=comment, credentials_revoked=revoked)
    event_type = outbox.GRANT_REVOKED if end_reason == "revoked" else outbox.GRANT_RELINQUISHED
    await audit(conn, org_id, event_type, actor=actor, subject=str(row["id"]), now=now, data=data)
    await outbox.enqueue(
        conn, org_id, event_type=event_type, subject=str(row["id"]), data=data, now=now
    )
