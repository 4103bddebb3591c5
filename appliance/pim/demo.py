"""Seeding of the PIM demo: role `prod-db-admin` needing two approvals.

`alice` may request the role; `bob` and `carol` approve it. Each user's TOTP
seed is sealed to every plane in `seal_public_keys`, so they can sign in on
the PIM plane (and on the auth and admin planes where those keys are given).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from appliance.identity.totp import new_secret
from appliance.identity.users import create_user
from appliance.pim.model import Policy
from appliance.pim.policies import add_approver, add_eligible, create_role

DEMO_ROLE: Final = "prod-db-admin"
DEMO_POLICY: Final = Policy(
    max_duration_seconds=4 * 3600,
    approvals_required=2,
    justification_required=True,
    allow_future_start=True,
)
REQUESTER: Final = "alice"
APPROVERS: Final = ("bob", "carol")


async def seed_pim_demo(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    seal_public_keys: Mapping[str, bytes],
    actor: str,
    now: datetime,
) -> dict[str, dict[str, str]]:
    """Create the demo users and role in the caller's transaction; return each user's secrets."""
    if "pim" not in seal_public_keys:
        raise ValueError(
            "seal_public_keys must include the pim plane, where the demo users sign in"
        )
    credentials: dict[str, dict[str, str]] = {}
    user_ids: dict[str, UUID] = {}
    for username in (REQUESTER, *APPROVERS):
        password = secrets.token_urlsafe(18)
        totp_secret = new_secret()
        user_ids[username] = await create_user(
            conn,
            org_id,
            username=username,
            password=password,
            totp_secret=totp_secret,
            seal_public_keys=seal_public_keys,
            actor=actor,
            now=now,
            display_name=username.capitalize(),
        )
        credentials[username] = {
            "username": username,
            "password": password,
            "totp_secret": totp_secret,
        }
    role_id = await create_role(
        conn,
        org_id,
        name=DEMO_ROLE,
        policy=DEMO_POLICY,
        actor=actor,
        now=now,
        description="Administrator of the production database",
    )
    await add_eligible(
        conn,
        org_id,
        role_id,
        actor=actor,
        now=now,
        role_name=DEMO_ROLE,
        user_id=user_ids[REQUESTER],
    )
    for approver in APPROVERS:
        await add_approver(
            conn,
            org_id,
            role_id,
            actor=actor,
            now=now,
            role_name=DEMO_ROLE,
            user_id=user_ids[approver],
        )
    return credentials
