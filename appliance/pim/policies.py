"""Roles, their policies, and who may request or approve them.

These functions run in the caller's transaction with the org context set.
The admin plane manages the model through them; `appliance up` seeds the
demo role with them. Each change is appended to the org's audit chain.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.pim import (
    PIM_APPROVER_INSERT,
    PIM_ELIGIBILITY_INSERT,
    PIM_POLICY_UPSERT,
    PIM_ROLE_INSERT,
)
from appliance.pim.model import Policy


async def create_role(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    name: str,
    policy: Policy,
    actor: str,
    now: datetime,
    description: str = "",
) -> UUID:
    """Insert a role with its policy and return the role id."""
    policy.check()
    role_id: UUID = await conn.fetchval(PIM_ROLE_INSERT, org_id, name, description)
    await set_policy(conn, org_id, role_id, policy=policy, actor=actor, now=now, role_name=name)
    return role_id


async def set_policy(
    conn: asyncpg.Connection,
    org_id: UUID,
    role_id: UUID,
    *,
    policy: Policy,
    actor: str,
    now: datetime,
    role_name: str,
) -> None:
    """Create or replace the policy of a role.

    Pending requests keep the approval count they started with.
    """
    policy.check()
    await conn.execute(
        PIM_POLICY_UPSERT,
        role_id,
        org_id,
        policy.max_duration_seconds,
        policy.approvals_required,
        policy.justification_required,
        policy.justification_pattern,
        policy.ticket_required,
        policy.ticket_pattern,
        policy.totp_step_up,
        policy.pending_ttl_seconds,
        policy.allow_future_start,
        policy.max_start_delay_seconds,
        now,
    )
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="pim.policy_set",
            plane="admin",
            actor=actor,
            subject=role_name,
            outcome="success",
            occurred_at=now,
            data=policy.as_dict(),
        ),
    )


async def add_eligible(
    conn: asyncpg.Connection,
    org_id: UUID,
    role_id: UUID,
    *,
    actor: str,
    now: datetime,
    role_name: str,
    user_id: UUID | None = None,
    group_id: UUID | None = None,
) -> None:
    """Let a user, or every member of a group, request the role."""
    await _add_member(
        conn,
        PIM_ELIGIBILITY_INSERT,
        "pim.eligibility_added",
        org_id,
        role_id,
        actor=actor,
        now=now,
        role_name=role_name,
        user_id=user_id,
        group_id=group_id,
    )


async def add_approver(
    conn: asyncpg.Connection,
    org_id: UUID,
    role_id: UUID,
    *,
    actor: str,
    now: datetime,
    role_name: str,
    user_id: UUID | None = None,
    group_id: UUID | None = None,
) -> None:
    """Let a user, or every member of a group, approve, deny and revoke the role's requests."""
    await _add_member(
        conn,
        PIM_APPROVER_INSERT,
        "pim.approver_added",
        org_id,
        role_id,
        actor=actor,
        now=now,
        role_name=role_name,
        user_id=user_id,
        group_id=group_id,
    )


async def _add_member(
    conn: asyncpg.Connection,
    statement: str,
    event_type: str,
    org_id: UUID,
    role_id: UUID,
    *,
    actor: str,
    now: datetime,
    role_name: str,
    user_id: UUID | None,
    group_id: UUID | None,
) -> None:
    if (user_id is None) == (group_id is None):
        raise ValueError("give exactly one of user_id and group_id")
    await conn.execute(statement, org_id, role_id, user_id, group_id)
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type=event_type,
            plane="admin",
            actor=actor,
            subject=role_name,
            outcome="success",
            occurred_at=now,
            data={
                "user_id": str(user_id) if user_id else None,
                "group_id": str(group_id) if group_id else None,
            },
        ),
    )
