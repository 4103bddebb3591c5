"""Creating an elevation request: the role's policy applied to the requester's request.

Rules, each enforced with an error that names what to change:
- the requester must be eligible for the role (403 `not_eligible`);
- the duration must not exceed the policy's maximum (400);
- a justification and a ticket must be present and match the policy's
  patterns where the policy asks for them (400);
- a start more than `START_SKEW_SECONDS` ahead needs a policy that allows a
  future start, and no further ahead than its maximum delay (400); a start in
  the past is rejected;
- a policy with TOTP step-up needs a fresh TOTP code in the request, which
  is used up like a login code (403 `step_up_failed`).

A pending request expires after the policy's pending time, or when its
requested window has passed, whichever comes first. A policy that needs no
approvals grants the request at once.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

import asyncpg
from nacl.public import PrivateKey

from appliance.db.queries.identity import USER_FOR_UPDATE, USER_RECORD_SUCCESS
from appliance.db.queries.pim import (
    PIM_IS_ELIGIBLE,
    PIM_REQUEST_GET,
    PIM_REQUEST_INSERT,
    PIM_ROLE_BY_NAME,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.identity.totp import TotpInvalid, verify_totp
from appliance.keys.sealing import unseal
from appliance.notify import outbox
from appliance.pim.audit import Rejected, audit
from appliance.pim.decisions import Actor, event_data, grant
from appliance.pim.errors import Forbidden
from appliance.pim.model import Policy, iso
from appliance.pim.validation import ElevationBody

# A start up to this far ahead counts as "now", so clock skew between the
# requester and the plane does not turn an immediate request into a future one.
START_SKEW_SECONDS: Final = 60


def check_against_policy(body: ElevationBody, policy: Policy, now: datetime) -> datetime | None:
    """Raise InvalidRequest where `body` breaks `policy`; return the start to store."""
    if body.duration_seconds > policy.max_duration_seconds:
        raise InvalidRequest(
            f"duration_seconds={body.duration_seconds} exceeds the role's maximum of "
            f"{policy.max_duration_seconds} s ({policy.max_duration_seconds // 60} min); "
            "ask for less, "
            "and file a new request to extend"
        )
    if policy.justification_required and not body.justification:
        raise InvalidRequest(
            "justification is missing: this role requires a reason for the request"
        )
    if (
        policy.justification_pattern
        and body.justification
        and not re.fullmatch(policy.justification_pattern, body.justification)
    ):
        raise InvalidRequest(
            "justification does not match the role's required pattern "
            f"{policy.justification_pattern!r}"
        )
    if policy.ticket_required and not body.ticket:
        raise InvalidRequest("ticket is missing: this role requires a ticket reference")
    if (
        policy.ticket_pattern
        and body.ticket
        and not re.fullmatch(policy.ticket_pattern, body.ticket)
    ):
        raise InvalidRequest(
            f"ticket {body.ticket!r} does not match the role's ticket pattern "
            f"{policy.ticket_pattern!r}"
        )
    if body.start is None:
        return None
    lead = (body.start - now).total_seconds()
    if lead < -START_SKEW_SECONDS:
        raise InvalidRequest(
            f"start {iso(body.start)} is in the past; omit start to begin on approval"
        )
    if lead <= START_SKEW_SECONDS:
        return None
    if not policy.allow_future_start:
        raise InvalidRequest(
            "this role's policy does not allow a future start; omit start to begin on approval"
        )
    if lead > policy.max_start_delay_seconds:
        raise InvalidRequest(
            f"start {iso(body.start)} is more than "
            f"{policy.max_start_delay_seconds // 3600} h ahead, "
            "the role's maximum"
        )
    return body.start


async def create_request(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    actor: Actor,
    body: ElevationBody,
    seal_key: PrivateKey,
    now: datetime,
) -> asyncpg.Record:
    """Store a pending request (or a grant, when the policy needs no approvals)."""
    role = await conn.fetchrow(PIM_ROLE_BY_NAME, org_id, body.role)
    if role is None:
        raise NotFound(
            f"role {body.role!r} not found in this org; `appliance pim roles` lists them"
        )
    if not await conn.fetchval(PIM_IS_ELIGIBLE, org_id, role["id"], actor.user_id):
        raise Rejected(
            Forbidden(
                "not_eligible", f"you are not eligible to request role {body.role!r}; ask an admin"
            ),
            event_type="pim.request.create",
            actor=actor.username,
            subject=body.role,
            reason="not_eligible",
        )
    policy = Policy.from_row(role)
    start = check_against_policy(body, policy, now)
    if policy.totp_step_up:
        await _step_up(conn, org_id, actor, body, seal_key, now)

    expires_at = now + timedelta(seconds=policy.pending_ttl_seconds)
    if start is not None:
        expires_at = min(expires_at, start + timedelta(seconds=body.duration_seconds))
    request_id: UUID = await conn.fetchval(
        PIM_REQUEST_INSERT,
        org_id,
        role["id"],
        actor.user_id,
        body.duration_seconds,
        body.justification,
        body.ticket,
        start,
        policy.approvals_required,
        now,
        expires_at,
    )
    row = await conn.fetchrow(PIM_REQUEST_GET, org_id, request_id)
    assert row is not None
    data = event_data(
        row,
        requested_start=iso(start),
        expires_at=iso(expires_at),
        approvals_required=policy.approvals_required,
    )
    await audit(
        conn,
        org_id,
        "pim.request.created",
        actor=actor.username,
        subject=str(request_id),
        now=now,
        data=data,
    )
    await outbox.enqueue(
        conn, org_id, event_type=outbox.REQUEST_CREATED, subject=str(request_id), data=data, now=now
    )
    if policy.approvals_required == 0:
        await grant(conn, org_id, row, approvers=[], actor="policy", now=now)
    refreshed = await conn.fetchrow(PIM_REQUEST_GET, org_id, request_id)
    assert refreshed is not None
    return refreshed


async def _step_up(
    conn: asyncpg.Connection,
    org_id: UUID,
    actor: Actor,
    body: ElevationBody,
    seal_key: PrivateKey,
    now: datetime,
) -> None:
    """Check a fresh TOTP code for the requester; a code works once, as at login."""

    def failed(reason: str) -> Rejected:
        return Rejected(
            Forbidden(
                "step_up_failed",
                "this role needs a fresh TOTP code in `totp`; "
                "send the current code (each code works once)",
            ),
            event_type="pim.request.create",
            actor=actor.username,
            subject=body.role,
            reason=reason,
        )

    if body.totp is None:
        raise failed("step_up_missing")
    user = await conn.fetchrow(USER_FOR_UPDATE, org_id, actor.username, "pim")
    if user is None or user["totp_sealed"] is None:
        raise failed("totp_not_enrolled_for_pim")
    secret = unseal(seal_key, bytes(user["totp_sealed"])).decode()
    try:
        step = verify_totp(
            secret, body.totp, now=now.timestamp(), last_used_step=user["last_totp_step"]
        )
    except TotpInvalid:
        raise failed("step_up_wrong_totp") from None
    await conn.execute(USER_RECORD_SUCCESS, user["id"], step, now)
