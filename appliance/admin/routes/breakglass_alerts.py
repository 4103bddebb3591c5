"""Break-glass alert targets: the webhooks the break-glass plane calls on activations.

The break-glass plane announces every activation and lockout itself (see
`appliance.breakglass.alerts`), signing each delivery with the target's
HMAC secret. The admin plane seals that secret to the break-glass plane's
X25519 public key and keeps no copy it could open: the secret is returned
once, in the response that creates the target, and never again.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import record_change
from appliance.admin.enrollment import plane_public_keys
from appliance.admin.fields import MAX_SECRET_CHARS, Body, query_int
from appliance.admin.rbac import Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, api, no_content, reply
from appliance.admin.service import Call, admin_call
from appliance.admin.users import iso
from appliance.db.queries.admin_alerts import (
    ADMIN_ALERT_TARGET_DELETE,
    ADMIN_ALERT_TARGET_GET,
    ADMIN_ALERT_TARGET_INSERT,
    ADMIN_ALERT_TARGET_LOCK,
    ADMIN_ALERT_TARGET_UPDATE,
    ADMIN_ALERT_TARGETS_LIST,
    ADMIN_ALERTS_OF_TARGET,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.keys.sealing import seal
from appliance.notify.webhooks import MIN_SECRET_CHARS as MIN_ALERT_SECRET_CHARS
from appliance.web.http import json_body

TARGETS = f"{ORG_PREFIX}/breakglass/alert-targets"
TARGET = f"{TARGETS}/<target_id>"
# Absolute http(s) URL with a host name or IPv4 address, an optional port and a
# printable path; the OpenAPI schema carries the same pattern.
URL_PATTERN: Final = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$")
MAX_URL_CHARS: Final = 2048
PAYLOAD_FORMATS: Final = ("json", "slack")
# The secret is the HMAC-SHA256 key. A chosen one needs the length PIM webhooks
# require, and a generated one has 256 random bits.
GENERATED_SECRET_BYTES: Final = 32
RECENT_ALERTS: Final = 20


def target_fields(row: asyncpg.Record) -> dict[str, Any]:
    """Non-secret fields of a target row, as audit before/after carries them."""
    return {"url": row["url"], "payload_format": row["payload_format"], "enabled": row["enabled"]}


def target_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": str(row["id"]), **target_fields(row), "created_at": iso(row["created_at"])}


def target_id_segment(value: str) -> UUID:
    """Parse the target id from the URL path. A malformed id cannot exist, so raise `NotFound`."""
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"alert target {value[:64]!r} not found: ids are UUIDs") from None


def checked_url(body: Body) -> str | None:
    url = body.string("url", max_chars=MAX_URL_CHARS, pattern=URL_PATTERN, required=False)
    if url is None:
        return None
    problem = f"url {url[:64]!r} has a port outside 1..65535"
    try:
        port = urlsplit(url).port
    except ValueError:
        raise InvalidRequest(problem) from None
    if port == 0:
        raise InvalidRequest(problem)
    return url


def checked_format(body: Body, default: str | None) -> str | None:
    value = body.string("payload_format", max_chars=16, required=False, default=default)
    if value is not None and value not in PAYLOAD_FORMATS:
        raise InvalidRequest(f"payload_format {value[:16]!r} is unknown: use json or slack")
    return value


async def locked_target(call: Call, target_id: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await call.conn.fetchrow(
        ADMIN_ALERT_TARGET_LOCK, call.org_id, target_id_segment(target_id)
    )
    if row is None:
        raise NotFound(f"alert target {target_id!r} not found in org {call.caller.org_name!r}")
    return row


@api.get(TARGETS)
async def list_alert_targets(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.BREAKGLASS_READ) as call:
        rows = await call.conn.fetch(ADMIN_ALERT_TARGETS_LIST, call.org_id, limit)
    return reply({"alert_targets": [target_view(r) for r in rows]})


@api.post(TARGETS)
async def create_alert_target(org: str) -> ResponseReturnValue:
    """Add a target. Without a secret in the body, generate one and return it this once."""
    body = Body(await json_body(), allowed={"url", "secret", "payload_format"})
    url = checked_url(body)
    if url is None:
        raise InvalidRequest("url is missing")
    secret = body.string(
        "secret", min_chars=MIN_ALERT_SECRET_CHARS, max_chars=MAX_SECRET_CHARS, required=False
    )
    payload_format = checked_format(body, "json")
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        public_key = (
            await plane_public_keys(call.conn, ["breakglass"], sealed="alert target secret")
        )["breakglass"]
        generated = secret is None
        if secret is None:
            secret = secrets.token_urlsafe(GENERATED_SECRET_BYTES)
        row = await call.conn.fetchrow(
            ADMIN_ALERT_TARGET_INSERT,
            call.org_id,
            url,
            seal(public_key, secret.encode()),
            payload_format,
            call.now,
        )
        await record_change(
            call,
            "breakglass.alert_target_created",
            str(row["id"]),
            before=None,
            after=target_fields(row),
            extra={"secret_generated": generated},
        )
    result: dict[str, Any] = {"alert_target": target_view(row)}
    if generated:
        result["secret"] = secret
    return reply(result, 201)


@api.get(TARGET)
async def get_alert_target(org: str, target_id: str) -> ResponseReturnValue:
    """Read a target with its most recent alerts and their delivery state."""
    async with admin_call(org, Permission.BREAKGLASS_READ) as call:
        checked = target_id_segment(target_id)
        row = await call.conn.fetchrow(ADMIN_ALERT_TARGET_GET, call.org_id, checked)
        if row is None:
            raise NotFound(f"alert target {target_id!r} not found in org {org!r}")
        alerts = await call.conn.fetch(ADMIN_ALERTS_OF_TARGET, call.org_id, checked, RECENT_ALERTS)
    recent = [
        {
            "event_type": a["event_type"],
            "account": a["subject"],
            "status": a["status"],
            "attempts": a["attempts"],
            "last_http_status": a["last_http_status"],
            "created_at": iso(a["created_at"]),
            "delivered_at": iso(a["delivered_at"]),
        }
        for a in alerts
    ]
    return reply({"alert_target": {**target_view(row), "recent_alerts": recent}})


@api.patch(TARGET)
async def update_alert_target(org: str, target_id: str) -> ResponseReturnValue:
    """Enable or disable a target, or change its URL or payload format (not its secret)."""
    body = Body(await json_body(), allowed={"enabled", "url", "payload_format"})
    url = checked_url(body)
    payload_format = checked_format(body, None)
    enabled = body.boolean("enabled")
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        row = await locked_target(call, target_id)
        before = target_fields(row)
        after = {
            "url": url if url is not None else row["url"],
            "payload_format": payload_format or row["payload_format"],
            "enabled": enabled if enabled is not None else row["enabled"],
        }
        if after != before:
            row = await call.conn.fetchrow(
                ADMIN_ALERT_TARGET_UPDATE,
                call.org_id,
                row["id"],
                after["url"],
                after["payload_format"],
                after["enabled"],
            )
            await record_change(
                call,
                "breakglass.alert_target_updated",
                str(row["id"]),
                before=before,
                after=after,
            )
    return reply({"alert_target": target_view(row)})


@api.delete(TARGET)
async def delete_alert_target(org: str, target_id: str) -> ResponseReturnValue:
    """Remove a target and, by the foreign key's cascade, its alert history."""
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        row = await locked_target(call, target_id)
        await call.conn.execute(ADMIN_ALERT_TARGET_DELETE, call.org_id, row["id"])
        await record_change(
            call,
            "breakglass.alert_target_deleted",
            str(row["id"]),
            before=target_fields(row),
            after=None,
        )
    return no_content()
