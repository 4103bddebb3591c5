"""Signing keys per plane and org: list, retire, revoke, and request a rotation.

The admin role reads only the public columns of `signing_keys` and may
change a key's status. It cannot create keys: private keys are generated
only inside the plane that owns them. So "rotate now" records a row in
`key_rotation_requests`, which that plane's rotation job performs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import record_change
from appliance.admin.errors import Conflict
from appliance.admin.fields import Body, optional_json_body, query_int
from appliance.admin.rbac import Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, api, reply
from appliance.admin.service import Call, admin_call
from appliance.admin.users import iso
from appliance.db.queries.admin import (
    ADMIN_KEY_LOCK,
    ADMIN_KEY_SET_STATUS,
    ADMIN_KEYS_LIST,
    ADMIN_ROTATION_REQUEST_INSERT,
    ADMIN_ROTATION_REQUEST_PENDING,
    ADMIN_ROTATION_REQUESTS_LIST,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.web.http import json_body

KEYS = f"{ORG_PREFIX}/keys"
KEY_PLANES = ("auth", "admin", "pim", "breakglass")
# Planes that sign, so whose keys can be rotated.
ROTATING_PLANES = ("auth", "pim", "breakglass")
# A retired key stays in the JWKS this long by default: longer than any
# credential or token it signed can live (break-glass: 1 hour at most).
DEFAULT_PUBLISH_SECONDS = 24 * 3600
MAX_PUBLISH_SECONDS = 30 * 24 * 3600
MAX_REASON_CHARS = 500


def key_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "plane": row["plane"],
        "kid": row["kid"],
        "alg": row["alg"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "activated_at": iso(row["activated_at"]),
        "retired_at": iso(row["retired_at"]),
        "publish_until": iso(row["publish_until"]),
    }


def rotation_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "plane": row["plane"],
        "requested_by": row["requested_by"],
        "requested_at": iso(row["requested_at"]),
        "reason": row["reason"],
        "status": row["status"],
        "completed_at": iso(row["completed_at"]),
        "new_kid": row["new_kid"],
        "failure_reason": row["failure_reason"],
    }


def plane_choice(value: str | None, allowed: tuple[str, ...], name: str = "plane") -> str | None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{name} {value[:32]!r} is not one of {', '.join(allowed)}")
    return value


@api.get(KEYS)
async def list_keys(org: str) -> ResponseReturnValue:
    plane = plane_choice(request.args.get("plane"), KEY_PLANES)
    async with admin_call(org, Permission.KEYS_READ) as call:
        rows = await call.conn.fetch(ADMIN_KEYS_LIST, call.org_id, plane)
    return reply({"keys": [key_view(r) for r in rows]})


async def locked_key(call: Call, kid: str) -> asyncpg.Record:
    row: asyncpg.Record | None = None
    if len(kid) <= 64:
        row = await call.conn.fetchrow(ADMIN_KEY_LOCK, call.org_id, kid)
    if row is None:
        raise NotFound(f"key {kid[:64]!r} not found in org {call.caller.org_name!r}")
    return row


@api.post(f"{KEYS}/<kid>/retire")
async def retire_key(org: str, kid: str) -> ResponseReturnValue:
    """Stop signing with a key; keep it in the JWKS for `publish_seconds` (default 24 h)."""
    body = Body(await optional_json_body(), allowed={"publish_seconds"})
    seconds = body.integer("publish_seconds", low=0, high=MAX_PUBLISH_SECONDS)
    async with admin_call(org, Permission.KEYS_WRITE) as call:
        row = await locked_key(call, kid)
        if row["status"] not in ("next", "active"):
            raise Conflict(
                f"key {kid!r} is {row['status']}; only a next or active key can be retired"
            )
        publish_until = call.now + timedelta(
            seconds=DEFAULT_PUBLISH_SECONDS if seconds is None else seconds
        )
        await call.conn.execute(
            ADMIN_KEY_SET_STATUS, call.org_id, kid, "retired", call.now, publish_until
        )
        after = await locked_key(call, kid)
        await record_change(call, "key.retired", kid, before=key_view(row), after=key_view(after))
    return reply({"key": key_view(after)})


@api.post(f"{KEYS}/<kid>/revoke")
async def revoke_key(org: str, kid: str) -> ResponseReturnValue:
    """Withdraw a key from the JWKS at once, so nothing it signed verifies any more."""
    async with admin_call(org, Permission.KEYS_WRITE) as call:
        row = await locked_key(call, kid)
        if row["status"] == "revoked":
            raise Conflict(f"key {kid!r} is already revoked")
        retired_at = row["retired_at"] or call.now
        await call.conn.execute(
            ADMIN_KEY_SET_STATUS, call.org_id, kid, "revoked", retired_at, call.now
        )
        after = await locked_key(call, kid)
        await record_change(call, "key.revoked", kid, before=key_view(row), after=key_view(after))
    return reply({"key": key_view(after)})


@api.get(f"{KEYS}/rotation-requests")
async def list_rotation_requests(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.KEYS_READ) as call:
        rows = await call.conn.fetch(ADMIN_ROTATION_REQUESTS_LIST, call.org_id, limit)
    return reply({"rotation_requests": [rotation_view(r) for r in rows]})


@api.post(f"{KEYS}/rotation-requests")
async def request_rotation(org: str) -> ResponseReturnValue:
    """Record a request to rotate a plane's key now; a pending request is joined, not duplicated."""
    body = Body(await json_body(), allowed={"plane", "reason"})
    plane = body.required_string("plane", max_chars=16)
    plane_choice(plane, ROTATING_PLANES)
    reason = body.string("reason", max_chars=MAX_REASON_CHARS, min_chars=0, required=False) or ""
    async with admin_call(org, Permission.KEYS_WRITE) as call:
        row = await call.conn.fetchrow(
            ADMIN_ROTATION_REQUEST_INSERT, call.org_id, plane, call.actor, call.now, reason
        )
        created = row is not None
        if row is None:
            row = await call.conn.fetchrow(ADMIN_ROTATION_REQUEST_PENDING, call.org_id, plane)
        else:
            await record_change(
                call,
                "key.rotation_requested",
                plane,
                before=None,
                after={"request_id": str(row["id"]), "plane": plane, "reason": reason},
            )
    view = rotation_view(row)
    view["already_pending"] = not created
    return reply({"rotation_request": view}, 202)
