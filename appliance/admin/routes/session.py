"""Login (password + TOTP), logout and `me` on the admin plane."""

from __future__ import annotations

import re

from quart.typing import ResponseReturnValue

from appliance.admin.fields import MAX_SECRET_CHARS, NAME_PATTERN, Body
from appliance.admin.login import log_in
from appliance.admin.routes import ORG_PREFIX, api, no_content, reply
from appliance.admin.service import PLANE, SESSION_SECONDS, admin_call, bearer_token, split_token
from appliance.audit.chain import AuditEvent, append
from appliance.identity.sessions import revoke_session
from appliance.web.http import client_address, json_body

TOTP_PATTERN = re.compile(r"^[0-9]{6}$")


@api.post(f"{ORG_PREFIX}/login")
async def login(org: str) -> ResponseReturnValue:
    body = Body(await json_body(), allowed={"username", "password", "totp"})
    username = body.required_string("username", max_chars=63, pattern=NAME_PATTERN)
    password = body.required_string("password", max_chars=MAX_SECRET_CHARS)
    totp = body.required_string("totp", max_chars=6, pattern=TOTP_PATTERN)
    result = await log_in(org, username, password, totp, source=client_address())
    return reply(
        {
            "token": result.token,
            "token_type": "Bearer",
            "expires_at": result.expires_at.isoformat(),
            "expires_in": SESSION_SECONDS,
            "org": org,
            "username": username,
            "roles": sorted(result.roles),
        }
    )


async def end_session(org: str, token: str) -> None:
    """Revoke the session of `token` and audit the logout."""
    async with admin_call(org, None, token=token) as call:
        await revoke_session(call.conn, split_token(token)[1], now=call.now)
        await append(
            call.conn,
            call.org_id,
            AuditEvent(
                event_type="admin.logout",
                plane=PLANE,
                actor=call.actor,
                subject=call.actor,
                outcome="success",
                occurred_at=call.now,
            ),
        )


@api.post(f"{ORG_PREFIX}/logout")
async def logout(org: str) -> ResponseReturnValue:
    await end_session(org, bearer_token())
    return no_content()


@api.get(f"{ORG_PREFIX}/me")
async def me(org: str) -> ResponseReturnValue:
    async with admin_call(org, None) as call:
        caller = call.caller
        return reply(
            {
                "username": caller.username,
                "org": caller.org_name,
                "roles": sorted(caller.roles),
                "permissions": sorted(p.value for p in caller.permissions),
                "session_expires_at": call.session_expires_at.isoformat(),
            }
        )
