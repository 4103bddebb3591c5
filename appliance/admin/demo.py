"""Demo seed of the admin plane: an org-admin `admin` in the demo org."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.admin.enrollment import USER_LOGIN_PLANES
from appliance.admin.users import bind_role, create_user_with_totp, generate_password
from appliance.keys.sealing import sealing_private_key

DEMO_ADMIN = "admin"


async def seed_admin_demo(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    plane_master_secrets: Mapping[str, bytes],
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Create user `admin` with role org-admin; return its secrets under key `admin`.

    The TOTP seed is sealed to the auth, pim and admin planes, whose public keys
    are derived here from their master secrets because no plane has started
    yet on the first `appliance up`. Runs in the caller's org-scoped transaction.
    """
    public_keys = {
        plane: bytes(sealing_private_key(plane_master_secrets[plane], plane).public_key)
        for plane in USER_LOGIN_PLANES
    }
    password = generate_password()
    user_id, secret = await create_user_with_totp(
        conn,
        org_id,
        username=DEMO_ADMIN,
        password=password,
        display_name="Demo admin",
        email="",
        public_keys=public_keys,
        actor=actor,
        now=now,
    )
    await bind_role(
        conn, org_id, user_id=user_id, username=DEMO_ADMIN, role="org-admin", actor=actor, now=now
    )
    return {"admin": {"username": DEMO_ADMIN, "password": password, "totp_secret": secret}}
