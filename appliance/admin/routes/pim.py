"""PIM roles with their policies, and who is eligible for and approves each role.

The PIM plane enforces these rows; this module only validates and stores
them. A policy's justification and ticket patterns are Python regular
expressions that the PIM plane matches against the whole value.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import asyncpg
from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import record_change
from appliance.admin.errors import Conflict
from appliance.admin.fields import NAME_PATTERN, Body, name_segment, query_int
from appliance.admin.rbac import Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, api, no_content, reply
from appliance.admin.routes.users import locked_user
from appliance.admin.service import Call, admin_call
from appliance.admin.users import iso
from appliance.db.queries.admin import (
    ADMIN_GROUP_GET,
    ADMIN_PIM_APPROVER_DELETE,
    ADMIN_PIM_ELIGIBILITY_DELETE,
    ADMIN_PIM_PRINCIPALS,
    ADMIN_PIM_ROLE_DELETE,
    ADMIN_PIM_ROLE_HAS_REQUESTS,
    ADMIN_PIM_ROLE_INSERT,
    ADMIN_PIM_ROLE_LOCK,
    ADMIN_PIM_ROLE_UPDATE,
    ADMIN_PIM_ROLES,
)
from appliance.db.queries.pim import (
    PIM_APPROVER_INSERT,
    PIM_ELIGIBILITY_INSERT,
    PIM_POLICY_UPSERT,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.web.http import json_body

ROLES = f"{ORG_PREFIX}/pim/roles"
ROLE = f"{ROLES}/<name>"
PRINCIPAL = f"{ROLE}/<any(eligible, approvers):relation>/<any(users, groups):kind>/<principal>"
MAX_DESCRIPTION_CHARS = 500
MAX_PATTERN_CHARS = 200
WEEK_SECONDS = 7 * 24 * 3600

# Policy fields: (low, high, default) for integers, default for booleans.
INTEGER_FIELDS = {
    "max_duration_seconds": (60, WEEK_SECONDS, 3600),
    "approvals_required": (0, 10, 1),
    "pending_ttl_seconds": (60, WEEK_SECONDS, 3600),
    "max_start_delay_seconds": (0, 30 * 24 * 3600, WEEK_SECONDS),
}
BOOLEAN_FIELDS = {
    "justification_required": True,
    "ticket_required": False,
    "totp_step_up": False,
    "allow_future_start": False,
}
PATTERN_FIELDS = ("justification_pattern", "ticket_pattern")
POLICY_FIELDS = {*INTEGER_FIELDS, *BOOLEAN_FIELDS, *PATTERN_FIELDS}


def policy_from_row(row: asyncpg.Record) -> dict[str, Any]:
    return {name: row[name] for name in sorted(POLICY_FIELDS)}


def read_policy(body: Body, current: dict[str, Any] | None) -> dict[str, Any]:
    """Return the policy after applying the body's fields to `current` (or the defaults)."""
    policy: dict[str, Any] = {}
    for name, (low, high, default) in INTEGER_FIELDS.items():
        value = body.integer(name, low=low, high=high)
        policy[name] = value if value is not None else (current or {}).get(name, default)
    for name, default in BOOLEAN_FIELDS.items():
        flag = body.boolean(name)
        policy[name] = flag if flag is not None else (current or {}).get(name, default)
    for name in PATTERN_FIELDS:
        if body.has(name):
            pattern = body.string(
                name, max_chars=MAX_PATTERN_CHARS, min_chars=0, required=False, nullable=True
            )
            policy[name] = checked_pattern(name, pattern or None)
        else:
            policy[name] = (current or {}).get(name)
    return policy


def checked_pattern(name: str, pattern: str | None) -> str | None:
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        raise InvalidRequest(f"{name} is not a valid regular expression: {error}") from None
    return pattern


async def role_view(call: Call, row: asyncpg.Record) -> dict[str, Any]:
    principals = await call.conn.fetch(ADMIN_PIM_PRINCIPALS, call.org_id, row["id"])
    members: dict[str, dict[str, list[str]]] = {
        "eligible": {"users": [], "groups": []},
        "approvers": {"users": [], "groups": []},
    }
    for p in principals:
        members[p["relation"]][p["kind"]].append(p["name"])
    return {
        "name": row["name"],
        "description": row["description"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "policy": policy_from_row(row),
        **members,
    }


async def fetch_role(call: Call, name: str) -> asyncpg.Record:
    rows = await call.conn.fetch(ADMIN_PIM_ROLES, call.org_id, name_segment("PIM role", name), 1)
    if not rows:
        raise NotFound(f"PIM role {name!r} not found in org {call.caller.org_name!r}")
    row: asyncpg.Record = rows[0]
    return row


async def locked_role_id(call: Call, name: str) -> UUID:
    role_id: UUID | None = await call.conn.fetchval(
        ADMIN_PIM_ROLE_LOCK, call.org_id, name_segment("PIM role", name)
    )
    if role_id is None:
        raise NotFound(f"PIM role {name!r} not found in org {call.caller.org_name!r}")
    return role_id


async def store_policy(call: Call, role_id: UUID, policy: dict[str, Any]) -> None:
    await call.conn.execute(
        PIM_POLICY_UPSERT,
        role_id,
        call.org_id,
        policy["max_duration_seconds"],
        policy["approvals_required"],
        policy["justification_required"],
        policy["justification_pattern"],
        policy["ticket_required"],
        policy["ticket_pattern"],
        policy["totp_step_up"],
        policy["pending_ttl_seconds"],
        policy["allow_future_start"],
        policy["max_start_delay_seconds"],
        call.now,
    )


@api.get(ROLES)
async def list_pim_roles(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.PIM_READ) as call:
        rows = await call.conn.fetch(ADMIN_PIM_ROLES, call.org_id, None, limit)
        return reply({"roles": [await role_view(call, r) for r in rows]})


@api.post(ROLES)
async def create_pim_role(org: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"name", "description", *POLICY_FIELDS})
    name = body.required_string("name", max_chars=63, pattern=NAME_PATTERN)
    description = (
        body.string("description", max_chars=MAX_DESCRIPTION_CHARS, min_chars=0, required=False)
        or ""
    )
    policy = read_policy(body, None)
    async with admin_call(org, Permission.PIM_WRITE) as call:
        role_id = await call.conn.fetchval(
            ADMIN_PIM_ROLE_INSERT, call.org_id, name, description, call.now
        )
        if role_id is None:
            raise Conflict(f"PIM role {name!r} already exists")
        await store_policy(call, role_id, policy)
        await record_change(
            call,
            "pim.role_created",
            name,
            before=None,
            after={"description": description, **policy},
        )
        return reply({"role": await role_view(call, await fetch_role(call, name))}, 201)


@api.get(ROLE)
async def get_pim_role(org: str, name: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.PIM_READ) as call:
        return reply({"role": await role_view(call, await fetch_role(call, name))})


@api.patch(ROLE)
async def update_pim_role(org: str, name: str) -> ResponseReturnValue:
    """Change the description or any policy field; omitted fields keep their value."""
    body = Body(await json_body(), allowed={"description", *POLICY_FIELDS})
    description = body.string(
        "description", max_chars=MAX_DESCRIPTION_CHARS, min_chars=0, required=False
    )
    async with admin_call(org, Permission.PIM_WRITE) as call:
        role_id = await locked_role_id(call, name)
        row = await fetch_role(call, name)
        before = {"description": row["description"], **policy_from_row(row)}
        policy = read_policy(body, policy_from_row(row))
        new_description = row["description"] if description is None else description
        await call.conn.execute(ADMIN_PIM_ROLE_UPDATE, role_id, new_description)
        await store_policy(call, role_id, policy)
        await record_change(
            call,
            "pim.policy_updated",
            name,
            before=before,
            after={"description": new_description, **policy},
        )
        return reply({"role": await role_view(call, await fetch_role(call, name))})


@api.delete(ROLE)
async def delete_pim_role(org: str, name: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.PIM_WRITE) as call:
        role_id = await locked_role_id(call, name)
        row = await fetch_role(call, name)
        before = await role_view(call, row)
        # Deleting a role would cascade to its requests and grants: keep their history.
        if await call.conn.fetchval(ADMIN_PIM_ROLE_HAS_REQUESTS, call.org_id, role_id):
            raise Conflict(
                f"PIM role {name!r} has requests or grants, which must stay on record; "
                "remove its eligible users and groups instead, so nobody can request it"
            )
        await call.conn.execute(ADMIN_PIM_ROLE_DELETE, role_id)
        await record_change(call, "pim.role_deleted", name, before=before, after=None)
    return no_content()


async def principal_ids(call: Call, kind: str, principal: str) -> tuple[UUID | None, UUID | None]:
    """(user_id, group_id) of a principal; exactly one is set."""
    if kind == "users":
        return (await locked_user(call, principal))["id"], None
    group_id = await call.conn.fetchval(
        ADMIN_GROUP_GET, call.org_id, name_segment("group", principal)
    )
    if group_id is None:
        raise NotFound(f"group {principal!r} not found in org {call.caller.org_name!r}")
    return None, group_id


@api.put(PRINCIPAL)
async def add_principal(
    org: str, name: str, relation: str, kind: str, principal: str
) -> ResponseReturnValue:
    async with admin_call(org, Permission.PIM_WRITE) as call:
        role_id = await locked_role_id(call, name)
        before = await role_view(call, await fetch_role(call, name))
        user_id, group_id = await principal_ids(call, kind, principal)
        statement = PIM_ELIGIBILITY_INSERT if relation == "eligible" else PIM_APPROVER_INSERT
        await call.conn.execute(statement, call.org_id, role_id, user_id, group_id)
        after = await role_view(call, await fetch_role(call, name))
        if after != before:
            await record_change(
                call,
                f"pim.{'eligibility' if relation == 'eligible' else 'approver'}_added",
                name,
                before={relation: before[relation]},
                after={relation: after[relation]},
            )
        return reply({"role": after})


@api.delete(PRINCIPAL)
async def remove_principal(
    org: str, name: str, relation: str, kind: str, principal: str
) -> ResponseReturnValue:
    async with admin_call(org, Permission.PIM_WRITE) as call:
        role_id = await locked_role_id(call, name)
        before = await role_view(call, await fetch_role(call, name))
        user_id, group_id = await principal_ids(call, kind, principal)
        statement = (
            ADMIN_PIM_ELIGIBILITY_DELETE if relation == "eligible" else ADMIN_PIM_APPROVER_DELETE
        )
        if await call.conn.fetchval(statement, role_id, user_id, group_id) is None:
            raise NotFound(f"{kind[:-1]} {principal!r} is not in {relation} of PIM role {name!r}")
        after = await role_view(call, await fetch_role(call, name))
        await record_change(
            call,
            f"pim.{'eligibility' if relation == 'eligible' else 'approver'}_removed",
            name,
            before={relation: before[relation]},
            after={relation: after[relation]},
        )
        return reply({"role": after})
