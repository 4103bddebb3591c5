"""Break-glass accounts: create, passphrase, custodians with TOTP, lifetime, disable.

TOTP seeds are sealed to the break-glass plane's public key, so this plane
shows a custodian's seed once (URI and QR) and can never read it back. Each
custodian has its own seed; custodian 1's seed is also sealed into the
account row, which single-custodian activation reads.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from uuid import UUID

import asyncpg
from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import jsonable, record_change
from appliance.admin.enrollment import enrollment, plane_public_keys
from appliance.admin.errors import Conflict
from appliance.admin.fields import NAME_PATTERN, Body, name_segment, query_int, secret
from appliance.admin.rbac import Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, api, reply
from appliance.admin.service import Call, admin_call
from appliance.admin.users import iso
from appliance.db.queries.admin import (
    ADMIN_AUDIT_RECENT_FOR_SUBJECT,
    ADMIN_BREAKGLASS_GET,
    ADMIN_BREAKGLASS_INSERT,
    ADMIN_BREAKGLASS_LIST,
    ADMIN_BREAKGLASS_LOCK,
    ADMIN_BREAKGLASS_SET_PASSPHRASE,
    ADMIN_BREAKGLASS_SET_PRIMARY_TOTP,
    ADMIN_BREAKGLASS_UNLOCK,
    ADMIN_BREAKGLASS_UPDATE,
    ADMIN_CUSTODIAN_UPSERT,
    ADMIN_CUSTODIANS_OF_ACCOUNT,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.identity.passwords import hash_passphrase
from appliance.identity.totp import new_secret
from appliance.keys.sealing import seal
from appliance.web.http import json_body

ACCOUNTS = f"{ORG_PREFIX}/breakglass/accounts"
ACCOUNT = f"{ACCOUNTS}/<name>"
ROLE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Break-glass credentials live at most one hour (enforced by the table too).
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 3600
MAX_CUSTODIANS = 2
ACTIVATION_EVENTS = ["breakglass.activated", "breakglass.activation_failed"]
RECENT_ACTIVATIONS = 10


def account_fields(row: asyncpg.Record) -> dict[str, Any]:
    """Non-secret fields of an account row, as audit before/after carries them."""
    return {
        "role": row["role"],
        "default_ttl_seconds": row["default_ttl_seconds"],
        "max_ttl_seconds": row["max_ttl_seconds"],
        "disabled": row["disabled"],
        "custodians_required": row["custodians_required"],
        "failed_attempts": row["failed_attempts"],
        "locked_until": row["locked_until"],
    }


async def account_view(call: Call, name: str, *, with_activations: bool = True) -> dict[str, Any]:
    # No row lock: reading must not queue behind an activation, which locks the account.
    row = await call.conn.fetchrow(ADMIN_BREAKGLASS_GET, call.org_id, name)
    custodians = await call.conn.fetch(ADMIN_CUSTODIANS_OF_ACCOUNT, call.org_id, row["id"])
    view: dict[str, Any] = {
        "name": row["name"],
        **jsonable(account_fields(row)),  # type: ignore[dict-item]
        "locked": row["locked_until"] is not None and row["locked_until"] > call.now,
        "last_activated_at": iso(row["last_activated_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "custodians": [
            {
                "position": c["position"],
                "name": c["name"],
                "enrolled_at": iso(c["enrolled_at"]),
                "enrolled_by": c["enrolled_by"],
            }
            for c in custodians
        ],
    }
    if with_activations:
        view["recent_activations"] = await recent_activations(call, name)
    return view


async def recent_activations(call: Call, name: str) -> list[dict[str, Any]]:
    rows = await call.conn.fetch(
        ADMIN_AUDIT_RECENT_FOR_SUBJECT, call.org_id, name, ACTIVATION_EVENTS, RECENT_ACTIVATIONS
    )
    activations = []
    for r in rows:
        data = json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]
        activations.append(
            {
                "seq": r["seq"],
                "occurred_at": iso(r["occurred_at"]),
                "outcome": r["outcome"],
                "failure_reason": r["failure_reason"],
                "incident": data.get("incident"),
                "expires_at": data.get("expires_at"),
            }
        )
    return activations


async def locked_account(call: Call, name: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await call.conn.fetchrow(
        ADMIN_BREAKGLASS_LOCK, call.org_id, name_segment("break-glass account", name)
    )
    if row is None:
        raise NotFound(f"break-glass account {name!r} not found in org {call.caller.org_name!r}")
    return row


def ttl_pair(body: Body, default: int, maximum: int) -> tuple[int, int]:
    new_default = body.integer("default_ttl_seconds", low=MIN_TTL_SECONDS, high=MAX_TTL_SECONDS)
    new_max = body.integer("max_ttl_seconds", low=MIN_TTL_SECONDS, high=MAX_TTL_SECONDS)
    new_default = default if new_default is None else new_default
    new_max = maximum if new_max is None else new_max
    if new_default > new_max:
        raise InvalidRequest(f"default_ttl_seconds={new_default} exceeds max_ttl_seconds={new_max}")
    return new_default, new_max


async def enroll_custodian(
    call: Call, account_id: UUID, account: str, position: int, custodian: str, public_key: bytes
) -> dict[str, Any]:
    """Give custodian `position` a new seed; return its one-time enrollment view."""
    totp_secret = new_secret()
    await call.conn.execute(
        ADMIN_CUSTODIAN_UPSERT,
        call.org_id,
        account_id,
        position,
        custodian,
        seal(public_key, totp_secret.encode()),
        call.now,
        call.actor,
    )
    if position == 1:
        await call.conn.execute(
            ADMIN_BREAKGLASS_SET_PRIMARY_TOTP,
            account_id,
            seal(public_key, totp_secret.encode()),
            call.now,
        )
    issuer = f"appliance {call.caller.org_name} break-glass"
    return {
        "position": position,
        "name": custodian,
        "totp": enrollment(totp_secret, account=f"{account}:{custodian}", issuer=issuer),
    }


@api.get(ACCOUNTS)
async def list_accounts(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.BREAKGLASS_READ) as call:
        rows = await call.conn.fetch(ADMIN_BREAKGLASS_LIST, call.org_id, limit)
        accounts = [
            {
                "name": r["name"],
                **jsonable(account_fields(r)),  # type: ignore[dict-item]
                "locked": r["locked_until"] is not None and r["locked_until"] > call.now,
                "last_activated_at": iso(r["last_activated_at"]),
                "custodians": list(r["custodians"]),
            }
            for r in rows
        ]
    return reply({"accounts": accounts})


@api.post(ACCOUNTS)
async def create_account(org: str) -> ResponseReturnValue:
    body = Body(
        await json_body(),
        allowed={
            "name",
            "role",
            "passphrase",
            "default_ttl_seconds",
            "max_ttl_seconds",
            "custodians",
        },
    )
    name = body.required_string("name", max_chars=63, pattern=NAME_PATTERN)
    role = body.required_string("role", max_chars=128, pattern=ROLE_PATTERN)
    passphrase = secret(body, "passphrase")
    default_ttl, max_ttl = ttl_pair(body, 900, MAX_TTL_SECONDS)
    custodians = (
        body.string_list(
            "custodians",
            min_items=1,
            max_items=MAX_CUSTODIANS,
            max_chars=63,
            pattern=NAME_PATTERN,
            required=True,
        )
        or []
    )
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        # Hashed only after authorization, so anonymous calls cannot spend Argon2id memory.
        passphrase_hash = await asyncio.to_thread(hash_passphrase, passphrase)
        public_key = (await plane_public_keys(call.conn, ["breakglass"]))["breakglass"]
        # A placeholder seal, replaced by custodian 1's seed below in this transaction.
        account_id = await call.conn.fetchval(
            ADMIN_BREAKGLASS_INSERT,
            call.org_id,
            name,
            role,
            passphrase_hash,
            seal(public_key, new_secret().encode()),
            default_ttl,
            max_ttl,
            len(custodians),
            call.now,
        )
        if account_id is None:
            raise Conflict(f"break-glass account {name!r} already exists")
        enrolled = [
            await enroll_custodian(call, account_id, name, position, custodian, public_key)
            for position, custodian in enumerate(custodians, start=1)
        ]
        view = await account_view(call, name, with_activations=False)
        await record_change(
            call,
            "breakglass.account_created",
            name,
            before=None,
            after={**account_fields(await locked_account(call, name)), "custodians": custodians},
        )
    return reply({"account": view, "custodians": enrolled}, 201)


@api.get(ACCOUNT)
async def get_account(org: str, name: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.BREAKGLASS_READ) as call:
        checked = name_segment("break-glass account", name)
        if await call.conn.fetchrow(ADMIN_BREAKGLASS_GET, call.org_id, checked) is None:
            raise NotFound(f"break-glass account {name!r} not found in org {org!r}")
        return reply({"account": await account_view(call, name)})


@api.patch(ACCOUNT)
async def update_account(org: str, name: str) -> ResponseReturnValue:
    """Change the role, lifetimes, or how many custodians must take part."""
    body = Body(
        await json_body(),
        allowed={"role", "default_ttl_seconds", "max_ttl_seconds", "custodians_required"},
    )
    role = body.string("role", max_chars=128, pattern=ROLE_PATTERN, required=False)
    required = body.integer("custodians_required", low=1, high=MAX_CUSTODIANS)
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        row = await locked_account(call, name)
        default_ttl, max_ttl = ttl_pair(body, row["default_ttl_seconds"], row["max_ttl_seconds"])
        custodians = await call.conn.fetch(ADMIN_CUSTODIANS_OF_ACCOUNT, call.org_id, row["id"])
        if required is not None and required > len(custodians):
            raise Conflict(
                f"custodians_required={required} but account {name!r} has {len(custodians)} "
                "custodian(s): enroll another custodian first"
            )
        after = {
            **account_fields(row),
            "role": role or row["role"],
            "default_ttl_seconds": default_ttl,
            "max_ttl_seconds": max_ttl,
            "custodians_required": required or row["custodians_required"],
        }
        await _update(call, row, after, "breakglass.account_updated", name)
        return reply({"account": await account_view(call, name)})


async def _update(
    call: Call, row: asyncpg.Record, after: dict[str, Any], event_type: str, name: str
) -> None:
    await call.conn.execute(
        ADMIN_BREAKGLASS_UPDATE,
        row["id"],
        after["role"],
        after["default_ttl_seconds"],
        after["max_ttl_seconds"],
        after["disabled"],
        after["custodians_required"],
        call.now,
    )
    await record_change(call, event_type, name, before=account_fields(row), after=after)


@api.put(f"{ACCOUNT}/passphrase")
async def set_passphrase(org: str, name: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"passphrase"})
    passphrase = secret(body, "passphrase")
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        row = await locked_account(call, name)
        passphrase_hash = await asyncio.to_thread(hash_passphrase, passphrase)
        await call.conn.execute(
            ADMIN_BREAKGLASS_SET_PASSPHRASE, row["id"], passphrase_hash, call.now
        )
        await record_change(
            call,
            "breakglass.passphrase_set",
            name,
            before=account_fields(row),
            after=account_fields(row),
        )
        return reply({"account": await account_view(call, name)})


@api.post(f"{ACCOUNT}/custodians")
async def add_custodian(org: str, name: str) -> ResponseReturnValue:
    """Enroll a custodian: a new one in the free position, or a new seed for a named one."""
    body = Body(await json_body(), allowed={"name"})
    custodian = body.required_string("name", max_chars=63, pattern=NAME_PATTERN)
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        public_key = (await plane_public_keys(call.conn, ["breakglass"]))["breakglass"]
        row = await locked_account(call, name)
        existing = await call.conn.fetch(ADMIN_CUSTODIANS_OF_ACCOUNT, call.org_id, row["id"])
        named = [c["position"] for c in existing if c["name"] == custodian]
        if named:
            position, event_type = named[0], "breakglass.custodian_reenrolled"
        elif len(existing) >= MAX_CUSTODIANS:
            raise Conflict(
                f"account {name!r} already has {MAX_CUSTODIANS} custodians; re-enroll one of "
                f"them by name ({', '.join(c['name'] for c in existing)})"
            )
        else:
            position, event_type = len(existing) + 1, "breakglass.custodian_enrolled"
        enrolled = await enroll_custodian(call, row["id"], name, position, custodian, public_key)
        after = {
            **account_fields(row),
            "custodians_required": max(
                row["custodians_required"], len(existing) + (0 if named else 1)
            ),
        }
        await _update(call, row, after, event_type, name)
        return reply({"account": await account_view(call, name), "custodian": enrolled}, 201)


async def _set_disabled(org: str, name: str, disabled: bool) -> ResponseReturnValue:
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        row = await locked_account(call, name)
        if row["disabled"] != disabled:
            event_type = "breakglass.account_disabled" if disabled else "breakglass.account_enabled"
            await _update(
                call, row, {**account_fields(row), "disabled": disabled}, event_type, name
            )
        return reply({"account": await account_view(call, name)})


@api.post(f"{ACCOUNT}/disable")
async def disable_account(org: str, name: str) -> ResponseReturnValue:
    return await _set_disabled(org, name, True)


@api.post(f"{ACCOUNT}/enable")
async def enable_account(org: str, name: str) -> ResponseReturnValue:
    return await _set_disabled(org, name, False)


@api.post(f"{ACCOUNT}/unlock")
async def unlock_account(org: str, name: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.BREAKGLASS_WRITE) as call:
        row = await locked_account(call, name)
        await call.conn.execute(ADMIN_BREAKGLASS_UNLOCK, row["id"], call.now)
        await record_change(
            call,
            "breakglass.account_unlocked",
            name,
            before=account_fields(row),
            after={**account_fields(row), "failed_attempts": 0, "locked_until": None},
        )
        return reply({"account": await account_view(call, name)})
