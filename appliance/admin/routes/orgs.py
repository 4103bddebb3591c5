"""Orgs: list and create (platform admins of the `system` org), and read one's own."""

from __future__ import annotations

from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import append_change, record_change
from appliance.admin.enrollment import USER_LOGIN_PLANES, enrollment, plane_public_keys
from appliance.admin.errors import Conflict
from appliance.admin.fields import (
    EMAIL_PATTERN,
    MAX_DISPLAY_NAME_CHARS,
    MAX_SECRET_CHARS,
    MIN_SECRET_CHARS,
    NAME_PATTERN,
    ORG_PATTERN,
    Body,
    query_int,
)
from appliance.admin.rbac import SYSTEM_ORG, Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, PREFIX, api, reply
from appliance.admin.service import admin_call
from appliance.admin.users import bind_role, create_user_with_totp, generate_password, iso
from appliance.db.queries.admin import ADMIN_ORG_GET, ADMIN_ORG_INSERT, ADMIN_ORGS_LIST
from appliance.db.tenancy import set_org
from appliance.web.http import json_body


def totp_issuer(org: str) -> str:
    return f"appliance {org}"


@api.get(f"{PREFIX}/orgs")
async def list_orgs() -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(SYSTEM_ORG, Permission.ORGS_MANAGE) as call:
        rows = await call.conn.fetch(ADMIN_ORGS_LIST, limit)
    orgs = [
        {"name": r["name"], "display_name": r["display_name"], "created_at": iso(r["created_at"])}
        for r in rows
    ]
    return reply({"orgs": orgs})


@api.post(f"{PREFIX}/orgs")
async def create_org() -> ResponseReturnValue:
    """Create an org and its first org-admin, whose password and TOTP are shown once."""
    body = Body(
        await json_body(),
        allowed={"name", "display_name", "admin_username", "admin_password", "admin_email"},
    )
    name = body.required_string("name", max_chars=63, pattern=ORG_PATTERN)
    display_name = (
        body.string(
            "display_name",
            max_chars=MAX_DISPLAY_NAME_CHARS,
            min_chars=0,
            required=False,
            default="",
        )
        or ""
    )
    admin_username = body.required_string("admin_username", max_chars=63, pattern=NAME_PATTERN)
    password = body.string(
        "admin_password", min_chars=MIN_SECRET_CHARS, max_chars=MAX_SECRET_CHARS, required=False
    )
    email = body.string("admin_email", max_chars=254, pattern=EMAIL_PATTERN, required=False) or ""
    generated = password is None
    password = password or generate_password()
    async with admin_call(SYSTEM_ORG, Permission.ORGS_MANAGE) as call:
        conn = call.conn
        public_keys = await plane_public_keys(conn, USER_LOGIN_PLANES)
        org = await conn.fetchrow(ADMIN_ORG_INSERT, name, display_name, call.now)
        if org is None:
            raise Conflict(f"org {name!r} already exists")
        await record_change(
            call,
            "org.created",
            name,
            before=None,
            after={"name": name, "display_name": display_name, "first_admin": admin_username},
        )
        actor = f"{call.actor}@{SYSTEM_ORG}"
        await set_org(conn, org["id"])
        await append_change(
            conn,
            org["id"],
            actor=actor,
            now=call.now,
            event_type="org.created",
            subject=name,
            before=None,
            after={"name": name, "display_name": display_name},
        )
        user_id, secret = await create_user_with_totp(
            conn,
            org["id"],
            username=admin_username,
            password=password,
            display_name="",
            email=email,
            public_keys=public_keys,
            actor=actor,
            now=call.now,
        )
        await bind_role(
            conn,
            org["id"],
            user_id=user_id,
            username=admin_username,
            role="org-admin",
            actor=actor,
            now=call.now,
        )
    admin: dict[str, object] = {
        "username": admin_username,
        "roles": ["org-admin"],
        "totp": enrollment(secret, account=admin_username, issuer=totp_issuer(name)),
    }
    if generated:
        admin["password"] = password
    return reply(
        {
            "org": {
                "name": name,
                "display_name": display_name,
                "created_at": iso(org["created_at"]),
            },
            "admin": admin,
        },
        201,
    )


@api.get(ORG_PREFIX)
async def get_org(org: str) -> ResponseReturnValue:
    async with admin_call(org, None) as call:
        row = await call.conn.fetchrow(ADMIN_ORG_GET, org)
        roles = sorted(call.caller.roles)
    return reply(
        {
            "name": row["name"],
            "display_name": row["display_name"],
            "created_at": iso(row["created_at"]),
            "your_roles": roles,
        }
    )
