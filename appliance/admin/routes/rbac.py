"""Roles of the admin API and their bindings to users."""

from __future__ import annotations

from quart.typing import ResponseReturnValue

from appliance.admin.changes import record_change
from appliance.admin.errors import Conflict
from appliance.admin.rbac import (
    ROLE_DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Permission,
    admin_role_for,
    bindable_roles,
)
from appliance.admin.routes import ORG_PREFIX, api, no_content, reply
from appliance.admin.routes.users import locked_user
from appliance.admin.service import Call, admin_call
from appliance.admin.users import bind_role, iso
from appliance.db.queries.admin import (
    ADMIN_BINDING_DELETE,
    ADMIN_BINDINGS_LIST,
    ADMIN_BINDINGS_OF_ROLE_LOCK,
)
from appliance.errors import InvalidRequest, NotFound

BINDINGS = f"{ORG_PREFIX}/role-bindings"
BINDING = f"{BINDINGS}/<username>/<role>"


def checked_role(call: Call, role: str) -> str:
    allowed = bindable_roles(call.caller.org_name)
    if role not in allowed:
        raise InvalidRequest(
            f"role {role[:64]!r} cannot be bound in org {call.caller.org_name!r}: "
            f"use one of {', '.join(sorted(allowed))}"
        )
    return role


async def bindings_view(call: Call) -> list[dict[str, object]]:
    rows = await call.conn.fetch(ADMIN_BINDINGS_LIST, call.org_id)
    return [
        {
            "username": r["username"],
            "role": r["role"],
            "created_at": iso(r["created_at"]),
            "created_by": r["created_by"],
        }
        for r in rows
    ]


@api.get(f"{ORG_PREFIX}/roles")
async def list_roles(org: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.RBAC_READ) as call:
        roles = sorted(bindable_roles(call.caller.org_name))
    return reply(
        {
            "roles": [
                {
                    "name": role,
                    "description": ROLE_DESCRIPTIONS[role],
                    "permissions": sorted(p.value for p in ROLE_PERMISSIONS[role]),
                }
                for role in roles
            ]
        }
    )


@api.get(BINDINGS)
async def list_bindings(org: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.RBAC_READ) as call:
        return reply({"bindings": await bindings_view(call)})


@api.put(BINDING)
async def add_binding(org: str, username: str, role: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.RBAC_WRITE) as call:
        checked_role(call, role)
        user = await locked_user(call, username)
        created = await bind_role(
            call.conn,
            call.org_id,
            user_id=user["id"],
            username=username,
            role=role,
            actor=call.actor,
            now=call.now,
        )
        return reply({"bindings": await bindings_view(call)}, 201 if created else 200)


@api.delete(BINDING)
async def remove_binding(org: str, username: str, role: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.RBAC_WRITE) as call:
        checked_role(call, role)
        user = await locked_user(call, username)
        admin_role = admin_role_for(call.caller.org_name)
        if role == admin_role:
            holders = await call.conn.fetch(ADMIN_BINDINGS_OF_ROLE_LOCK, call.org_id, role)
            others = [r for r in holders if r["user_id"] != user["id"]]
            if not others:
                raise Conflict(
                    f"{username!r} is the last enabled {role} of this org; bind {role} to "
                    "another user first, so the org keeps an administrator"
                )
        removed = await call.conn.fetchval(ADMIN_BINDING_DELETE, call.org_id, user["id"], role)
        if removed is None:
            raise NotFound(f"user {username!r} has no binding to role {role!r}")
        await record_change(
            call,
            "rbac.binding_removed",
            username,
            before={"username": username, "role": role},
            after=None,
        )
    return no_content()
