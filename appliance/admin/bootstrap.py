"""The first administrator of an org, created with direct database access.

The admin API rejects every call until an administrator exists, so the
first one is created by `appliance admin bootstrap`. It needs the admin
role's database credentials, whose holder can change every row anyway. It
refuses when the org already has an administrator, so it cannot be used to
take over an org that is administered through the API. For the org named
`system` it creates the org if needed and binds `platform-admin`, whose
holders create every other org through the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from appliance.admin.changes import append_change
from appliance.admin.enrollment import USER_LOGIN_PLANES, plane_public_keys
from appliance.admin.rbac import SYSTEM_ORG, admin_role_for
from appliance.admin.users import bind_role, create_user_with_totp
from appliance.db.queries.admin import (
    ADMIN_BINDINGS_OF_ROLE_LOCK,
    ADMIN_ORG_GET,
    ADMIN_ORG_INSERT,
)
from appliance.db.tenancy import set_org

BOOTSTRAP_ACTOR = "bootstrap"


class BootstrapRefused(Exception):
    """The bootstrap cannot run; the message states why and what to do instead."""


@dataclass(frozen=True)
class Bootstrapped:
    org: str
    username: str
    role: str
    totp_secret: str


async def bootstrap_admin(
    conn: asyncpg.Connection, *, org: str, username: str, password: str, now: datetime | None = None
) -> Bootstrapped:
    """Create `username` as the first administrator of `org` in one transaction."""
    now = now or datetime.now(UTC)
    role = admin_role_for(org)
    async with conn.transaction():
        row = await conn.fetchrow(ADMIN_ORG_GET, org)
        if row is None:
            if org != SYSTEM_ORG:
                raise BootstrapRefused(
                    f"org {org!r} does not exist: bootstrap the {SYSTEM_ORG!r} org and create "
                    "other orgs through the API (appliance admin orgs create)"
                )
            row = await conn.fetchrow(ADMIN_ORG_INSERT, org, "Platform administration", now)
            await set_org(conn, row["id"])
            await append_change(
                conn,
                row["id"],
                actor=BOOTSTRAP_ACTOR,
                now=now,
                event_type="org.created",
                subject=org,
                before=None,
                after={"name": org},
            )
        org_id = row["id"]
        await set_org(conn, org_id)
        if await conn.fetch(ADMIN_BINDINGS_OF_ROLE_LOCK, org_id, role):
            raise BootstrapRefused(
                f"org {org!r} already has an enabled {role}; ask them to create your user "
                "through the API"
            )
        # Platform admins log in to the admin plane only; org users to every login plane.
        planes = ("admin",) if org == SYSTEM_ORG else USER_LOGIN_PLANES
        public_keys = await plane_public_keys(conn, planes)
        user_id, secret = await create_user_with_totp(
            conn,
            org_id,
            username=username,
            password=password,
            display_name="",
            email="",
            public_keys=public_keys,
            actor=BOOTSTRAP_ACTOR,
            now=now,
        )
        await bind_role(
            conn,
            org_id,
            user_id=user_id,
            username=username,
            role=role,
            actor=BOOTSTRAP_ACTOR,
            now=now,
        )
    return Bootstrapped(org, username, role, secret)
