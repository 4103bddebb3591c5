"""Groups and their members."""

from __future__ import annotations

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
    ADMIN_GROUP_DELETE,
    ADMIN_GROUP_GET,
    ADMIN_GROUP_INSERT,
    ADMIN_GROUP_MEMBER_ADD,
    ADMIN_GROUP_MEMBER_REMOVE,
    ADMIN_GROUP_MEMBERS,
    ADMIN_GROUPS_LIST,
)
from appliance.errors import NotFound
from appliance.web.http import json_body

GROUPS = f"{ORG_PREFIX}/groups"
GROUP = f"{GROUPS}/<name>"


async def group_row(call: Call, name: str) -> tuple[object, dict[str, object]]:
    row = await call.conn.fetchrow(ADMIN_GROUP_GET, call.org_id, name_segment("group", name))
    if row is None:
        raise NotFound(f"group {name!r} not found in org {call.caller.org_name!r}")
    members = [
        r["username"] for r in await call.conn.fetch(ADMIN_GROUP_MEMBERS, call.org_id, row["id"])
    ]
    return row["id"], {
        "name": row["name"],
        "created_at": iso(row["created_at"]),
        "members": members,
    }


@api.get(GROUPS)
async def list_groups(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.GROUPS_READ) as call:
        rows = await call.conn.fetch(ADMIN_GROUPS_LIST, call.org_id, limit)
    groups = [
        {"name": r["name"], "created_at": iso(r["created_at"]), "member_count": r["members"]}
        for r in rows
    ]
    return reply({"groups": groups})


@api.post(GROUPS)
async def create_group(org: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"name"})
    name = body.required_string("name", max_chars=63, pattern=NAME_PATTERN)
    async with admin_call(org, Permission.GROUPS_WRITE) as call:
        row = await call.conn.fetchrow(ADMIN_GROUP_INSERT, call.org_id, name, call.now)
        if row is None:
            raise Conflict(f"group {name!r} already exists")
        await record_change(call, "group.created", name, before=None, after={"name": name})
    return reply(
        {"group": {"name": name, "created_at": iso(row["created_at"]), "members": []}}, 201
    )


@api.get(GROUP)
async def get_group(org: str, name: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.GROUPS_READ) as call:
        _, view = await group_row(call, name)
    return reply({"group": view})


@api.delete(GROUP)
async def delete_group(org: str, name: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.GROUPS_WRITE) as call:
        group_id, view = await group_row(call, name)
        await call.conn.execute(ADMIN_GROUP_DELETE, group_id)
        await record_change(call, "group.deleted", name, before=view, after=None)
    return no_content()


@api.put(f"{GROUP}/members/<username>")
async def add_member(org: str, name: str, username: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.GROUPS_WRITE) as call:
        group_id, before = await group_row(call, name)
        user = await locked_user(call, username)
        added = await call.conn.fetchval(ADMIN_GROUP_MEMBER_ADD, call.org_id, group_id, user["id"])
        _, after = await group_row(call, name)
        if added is not None:
            await record_change(
                call,
                "group.member_added",
                name,
                before=before,
                after=after,
                extra={"member": username},
            )
    return reply({"group": after})


@api.delete(f"{GROUP}/members/<username>")
async def remove_member(org: str, name: str, username: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.GROUPS_WRITE) as call:
        group_id, before = await group_row(call, name)
        user = await locked_user(call, username)
        removed = await call.conn.fetchval(ADMIN_GROUP_MEMBER_REMOVE, group_id, user["id"])
        if removed is None:
            raise NotFound(f"user {username!r} is not a member of group {name!r}")
        _, after = await group_row(call, name)
        await record_change(
            call,
            "group.member_removed",
            name,
            before=before,
            after=after,
            extra={"member": username},
        )
    return reply({"group": after})
