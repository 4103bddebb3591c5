"""The admin console: server-rendered pages for users, break-glass accounts and audit.

Security: the session token travels in an HttpOnly, SameSite=Strict cookie
scoped to `/admin/` (Secure when served over HTTPS). Every state-changing form
(login, logout) carries a CSRF token. Before login it is a random value that
must match a cookie (double submit). After login it is an HMAC of the session
token under a key derived from the admin master secret. The
Content-Security-Policy allows no script at all and only this plane's own
stylesheet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response, redirect, render_template, request
from quart.typing import ResponseReturnValue

from appliance.admin.errors import Unauthorized
from appliance.admin.login import log_in
from appliance.admin.rbac import Permission
from appliance.admin.routes.audit import snapshot
from appliance.admin.routes.breakglass import recent_activations
from appliance.admin.routes.session import end_session
from appliance.admin.service import SESSION_SECONDS, admin_call, service
from appliance.admin.users import iso, user_view
from appliance.audit.export import event_record
from appliance.audit.verify import ChainBroken, verify_chain
from appliance.db.queries.admin import (
    ADMIN_AUDIT_RECENT,
    ADMIN_BREAKGLASS_LIST,
    ADMIN_USERS_LIST,
)
from appliance.errors import ApiError, RateLimited
from appliance.web.http import client_address

blueprint = Blueprint("admin_console", __name__, template_folder="../web/templates")

SESSION_COOKIE = "admin_session"
CSRF_COOKIE = "admin_login_csrf"
COOKIE_PATH = "/admin/"
CONSOLE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
RECENT_EVENTS = 100
STYLESHEET = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
nav a { margin-right: 1rem; }
.ok { color: #0a6b0a; font-weight: bold; }
.bad { color: #a40000; font-weight: bold; }
.error { color: #a40000; }
form.inline { display: inline; }
label { display: block; margin-top: 0.5rem; }
"""


def secure_cookies() -> bool:
    return request.scheme == "https" or urlsplit(service().public_url).scheme == "https"


def page(response_body: str, status: int = 200) -> Response:
    response = Response(response_body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


def session_csrf(token: str) -> str:
    return hmac.new(service().console_key, token.encode(), hashlib.sha256).hexdigest()


async def render(template: str, status: int = 200, **context: Any) -> Response:
    return page(await render_template(f"admin/{template}", **context), status)


def console_page(
    handler: Callable[..., Awaitable[ResponseReturnValue]],
) -> Callable[..., Awaitable[ResponseReturnValue]]:
    """Render API errors as HTML; send a caller without a session to the login page."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            return await handler(*args, **kwargs)
        except Unauthorized:
            return redirect("/admin/", 303)
        except ApiError as error:
            return await render("error.html", error.status, message=error.description)

    return wrapper


def cookie_token() -> str:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("no console session")
    return token


@blueprint.get("/admin/console.css")
async def stylesheet() -> ResponseReturnValue:
    return Response(STYLESHEET, content_type="text/css; charset=utf-8")


@blueprint.get("/admin/")
async def login_form() -> ResponseReturnValue:
    csrf = secrets.token_urlsafe(24)
    response = await render("login.html", csrf=csrf, error=None)
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="Strict",
        path=COOKIE_PATH,
        secure=secure_cookies(),
        max_age=3600,
    )
    return response


@blueprint.post("/admin/login")
async def login_submit() -> ResponseReturnValue:
    form = await request.form
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = form.get("csrf", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return await render(
            "error.html",
            403,
            message="the form expired or was not sent by this "
            "console: reload the login page and try again",
        )
    org = form.get("org", "")
    try:
        result = await log_in(
            org,
            form.get("username", "")[:63],
            form.get("password", "")[:1024],
            form.get("totp", "")[:6],
            source=client_address(),
        )
    except ApiError as error:
        csrf = secrets.token_urlsafe(24)
        limited = isinstance(error, RateLimited)
        response = await render(
            "login.html",
            error.status if limited else 401,
            csrf=csrf,
            error="Too many failed logins from this address: try again in "
            f"{service().source_limit.window_seconds // 60} minutes."
            if limited
            else "Login failed: check org, username, password and TOTP code.",
        )
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="Strict",
            path=COOKIE_PATH,
            secure=secure_cookies(),
            max_age=3600,
        )
        return response
    done = redirect(f"/admin/o/{org}/users", 303)
    done.set_cookie(
        SESSION_COOKIE,
        result.token,
        httponly=True,
        samesite="Strict",
        path=COOKIE_PATH,
        secure=secure_cookies(),
        max_age=SESSION_SECONDS,
    )
    done.delete_cookie(CSRF_COOKIE, path=COOKIE_PATH)
    return done


@blueprint.post("/admin/o/<org>/logout")
@console_page
async def logout(org: str) -> ResponseReturnValue:
    token = cookie_token()
    form = await request.form
    if not hmac.compare_digest(session_csrf(token).encode(), form.get("csrf", "").encode()):
        return await render("error.html", 403, message="invalid CSRF token: reload the page")
    await end_session(org, token)
    response = redirect("/admin/", 303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def frame(org: str, caller_name: str, token: str, active: str) -> dict[str, Any]:
    return {"org": org, "username": caller_name, "csrf": session_csrf(token), "active": active}


@blueprint.get("/admin/o/<org>/users")
@console_page
async def users_page(org: str) -> ResponseReturnValue:
    token = cookie_token()
    async with admin_call(org, Permission.USERS_READ, token=token) as call:
        rows = await call.conn.fetch(ADMIN_USERS_LIST, call.org_id, 1000)
        users = [user_view(r, call.now) for r in rows]
    return await render("users.html", users=users, **frame(org, call.actor, token, "users"))


@blueprint.get("/admin/o/<org>/breakglass")
@console_page
async def breakglass_page(org: str) -> ResponseReturnValue:
    token = cookie_token()
    async with admin_call(org, Permission.BREAKGLASS_READ, token=token) as call:
        rows = await call.conn.fetch(ADMIN_BREAKGLASS_LIST, call.org_id, 1000)
        accounts = []
        for row in rows:
            accounts.append(
                {
                    "name": row["name"],
                    "role": row["role"],
                    "disabled": row["disabled"],
                    "locked": row["locked_until"] is not None and row["locked_until"] > call.now,
                    "max_ttl_seconds": row["max_ttl_seconds"],
                    "custodians": list(row["custodians"]),
                    "custodians_required": row["custodians_required"],
                    "last_activated_at": iso(row["last_activated_at"]),
                    "activations": await recent_activations(call, row["name"]),
                }
            )
    return await render(
        "breakglass.html", accounts=accounts, **frame(org, call.actor, token, "breakglass")
    )


@blueprint.get("/admin/o/<org>/audit")
@console_page
async def audit_page(org: str) -> ResponseReturnValue:
    token = cookie_token()
    async with admin_call(org, Permission.AUDIT_READ, token=token) as call:
        org_id, actor = call.org_id, call.actor
    async with snapshot(service().pool, org_id) as conn:
        try:
            report = await verify_chain(conn, org_id)
            verification = {"ok": True, "events": report.events, "head": report.head_hash.hex()}
        except ChainBroken as error:
            verification = {"ok": False, "seq": error.seq, "reason": error.reason}
        rows = await conn.fetch(ADMIN_AUDIT_RECENT, org_id, RECENT_EVENTS)
    events = [event_record(org_id, row) for row in rows]
    for event in events:
        event["data_text"] = json.dumps(event["data"], sort_keys=True)[:300]
    return await render(
        "audit.html", verification=verification, events=events, **frame(org, actor, token, "audit")
    )
