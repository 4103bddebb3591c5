"""Users: create with TOTP, read, update, disable, enable, unlock, reset password or TOTP."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import record_change
from appliance.admin.enrollment import USER_LOGIN_PLANES, enrollment, plane_public_keys
from appliance.admin.errors import Conflict
from appliance.admin.fields import (
    EMAIL_PATTERN,
    MAX_DISPLAY_NAME_CHARS,
    MAX_SECRET_CHARS,
    MIN_SECRET_CHARS,
    NAME_PATTERN,
    Body,
    name_segment,
    query_int,
)
from appliance.admin.rbac import Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, api, reply
from appliance.admin.routes.orgs import totp_issuer
from appliance.admin.service import Call, admin_call
from appliance.admin.users import create_user_with_totp, generate_password, seal_totp, user_view
from appliance.db.queries.admin import (
    ADMIN_USER_GET,
    ADMIN_USER_LOCK,
    ADMIN_USER_SET_DISABLED,
    ADMIN_USER_SET_PASSWORD,
    ADMIN_USER_TOTP_SEALS_DELETE,
    ADMIN_USER_UNLOCK,
    ADMIN_USER_UPDATE_PROFILE,
    ADMIN_USERS_LIST,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.identity.passwords import hash_passphrase
from appliance.identity.totp import new_secret
from appliance.web.http import json_body

USERS = f"{ORG_PREFIX}/users"
USER = f"{USERS}/<username>"


def profile(row: asyncpg.Record) -> dict[str, Any]:
    """Return the non-secret fields of a user row, as audit events carry them in before/after."""
    return {
        "display_name": row["display_name"],
        "email": row["email"],
        "disabled": row["disabled"],
        "failed_attempts": row["failed_attempts"],
        "locked_until": row["locked_until"],
    }


async def locked_user(call: Call, username: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await call.conn.fetchrow(
        ADMIN_USER_LOCK, call.org_id, name_segment("user", username)
    )
    if row is None:
        raise NotFound(f"user {username!r} not found in org {call.caller.org_name!r}")
    return row


async def current_view(call: Call, username: str) -> dict[str, Any]:
    row = await call.conn.fetchrow(ADMIN_USER_GET, call.org_id, username)
    return user_view(row, call.now)


@api.get(USERS)
async def list_users(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.USERS_READ) as call:
        rows = await call.conn.fetch(ADMIN_USERS_LIST, call.org_id, limit)
        return reply({"users": [user_view(r, call.now) for r in rows]})


@api.post(USERS)
async def create_user(org: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"username", "display_name", "email", "password"})
    username = body.required_string("username", max_chars=63, pattern=NAME_PATTERN)
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
    email = body.string("email", max_chars=254, pattern=EMAIL_PATTERN, required=False) or ""
    password = body.string(
        "password", min_chars=MIN_SECRET_CHARS, max_chars=MAX_SECRET_CHARS, required=False
    )
    generated = password is None
    password = password or generate_password()
    async with admin_call(org, Permission.USERS_WRITE) as call:
        public_keys = await plane_public_keys(call.conn, USER_LOGIN_PLANES)
        _, secret = await create_user_with_totp(
            call.conn,
            call.org_id,
            username=username,
            password=password,
            display_name=display_name,
            email=email,
            public_keys=public_keys,
            actor=call.actor,
            now=call.now,
        )
        view = await current_view(call, username)
    result: dict[str, Any] = {
        "user": view,
        "totp": enrollment(secret, account=username, issuer=totp_issuer(org)),
    }
    if generated:
        result["password"] = password
    return reply(result, 201)


@api.get(USER)
async def get_user(org: str, username: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.USERS_READ) as call:
        row = await call.conn.fetchrow(ADMIN_USER_GET, call.org_id, name_segment("user", username))
        if row is None:
            raise NotFound(f"user {username!r} not found in org {org!r}")
        return reply({"user": user_view(row, call.now)})


@api.patch(USER)
async def update_user(org: str, username: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"display_name", "email"})
    display_name = body.string(
        "display_name", max_chars=MAX_DISPLAY_NAME_CHARS, min_chars=0, required=False
    )
    email = body.string("email", max_chars=254, min_chars=0, required=False)
    if email and not EMAIL_PATTERN.fullmatch(email):
        raise InvalidRequest("email must be empty or an address of the form name@domain")
    async with admin_call(org, Permission.USERS_WRITE) as call:
        row = await locked_user(call, username)
        new_display = row["display_name"] if display_name is None else display_name
        new_email = row["email"] if email is None else email
        await call.conn.execute(
            ADMIN_USER_UPDATE_PROFILE, row["id"], new_display, new_email, call.now
        )
        await record_change(
            call,
            "user.updated",
            username,
            before=profile(row),
            after={**profile(row), "display_name": new_display, "email": new_email},
        )
        return reply({"user": await current_view(call, username)})


async def _set_disabled(org: str, username: str, disabled: bool) -> ResponseReturnValue:
    async with admin_call(org, Permission.USERS_WRITE) as call:
        row = await locked_user(call, username)
        if disabled and row["id"] == call.caller.user_id:
            raise Conflict("you cannot disable your own user: ask another admin")
        if row["disabled"] != disabled:
            await call.conn.execute(ADMIN_USER_SET_DISABLED, row["id"], disabled, call.now)
            await record_change(
                call,
                "user.disabled" if disabled else "user.enabled",
                username,
                before=profile(row),
                after={**profile(row), "disabled": disabled},
            )
        return reply({"user": await current_view(call, username)})


@api.post(f"{USER}/disable")
async def disable_user(org: str, username: str) -> ResponseReturnValue:
    return await _set_disabled(org, username, True)


@api.post(f"{USER}/enable")
async def enable_user(org: str, username: str) -> ResponseReturnValue:
    return await _set_disabled(org, username, False)


@api.post(f"{USER}/unlock")
async def unlock_user(org: str, username: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.USERS_WRITE) as call:
        row = await locked_user(call, username)
        await call.conn.execute(ADMIN_USER_UNLOCK, row["id"], call.now)
        await record_change(
            call,
            "user.unlocked",
            username,
            before=profile(row),
            after={**profile(row), "failed_attempts": 0, "locked_until": None},
        )
        return reply({"user": await current_view(call, username)})


@api.post(f"{USER}/reset-password")
async def reset_password(org: str, username: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"password"})
    password = body.string(
        "password", min_chars=MIN_SECRET_CHARS, max_chars=MAX_SECRET_CHARS, required=False
    )
    generated = password is None
    password = password or generate_password()
    async with admin_call(org, Permission.USERS_WRITE) as call:
        row = await locked_user(call, username)
        # Hashed only after authorization, so anonymous calls cannot spend Argon2id memory.
        password_hash = await asyncio.to_thread(hash_passphrase, password)
        await call.conn.execute(ADMIN_USER_SET_PASSWORD, row["id"], password_hash, call.now)
        await record_change(
            call,
            "user.password_reset",
            username,
            before=profile(row),
            after=profile(row),
            extra={"password_generated": generated},
        )
        result: dict[str, Any] = {"user": await current_view(call, username)}
    if generated:
        result["password"] = password
    return reply(result)


@api.post(f"{USER}/reset-totp")
async def reset_totp(org: str, username: str) -> ResponseReturnValue:
    """Replace the user's TOTP seed on every login plane; the old one stops working at once."""
    async with admin_call(org, Permission.USERS_WRITE) as call:
        public_keys = await plane_public_keys(call.conn, USER_LOGIN_PLANES)
        row = await locked_user(call, username)
        secret = new_secret()
        await call.conn.execute(ADMIN_USER_TOTP_SEALS_DELETE, row["id"])
        await seal_totp(call.conn, call.org_id, row["id"], secret, public_keys)
        await record_change(
            call,
            "user.totp_reset",
            username,
            before=profile(row),
            after=profile(row),
            extra={"totp_planes": sorted(public_keys)},
        )
        view = await current_view(call, username)
    return reply(
        {"user": view, "totp": enrollment(secret, account=username, issuer=totp_issuer(org))}
    )
