"""Server-rendered pages of the auth plane: rendering, redirects and cookies.

Pages get their own Content-Security-Policy: nothing may load except the
inline style block carrying this response's nonce. The policy has no
`form-action`, because the login form's response redirects to the client's
registered redirect URI, which browsers check against `form-action` too.
"""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID

import asyncpg
from quart import Response, current_app, render_template, request

from appliance.db.queries.oidc import AUTH_SESSION_BY_TOKEN
from appliance.db.tenancy import org_transaction
from appliance.identity.sessions import token_hash
from appliance.oidc import csrf
from appliance.oidc.service import OidcService

SESSION_COOKIE = "appliance_auth_session"
# The single sign-on session at this provider: one working day. Relying
# parties keep their own sessions; signing out here ends this one.
AUTH_SESSION_SECONDS = 8 * 3600
MAX_SESSION_TOKEN_CHARS = 128


def service() -> OidcService:
    svc: OidcService = current_app.extensions["oidc"]
    return svc


def cookie_path(org: str) -> str:
    return f"/o/{org}/"


async def render_page(template: str, status: int, **context: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    html = await render_template(template, style_nonce=nonce, **context)
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def redirect_to(location: str, status: int = 302) -> Response:
    return Response("", status=status, headers={"Location": location})


def csrf_pair(svc: OidcService) -> tuple[str, str]:
    """Return (cookie value, form token), reusing the request's CSRF cookie if it has one."""
    value = request.cookies.get(csrf.COOKIE_NAME)
    if not value or len(value) > csrf.MAX_TOKEN_CHARS:
        value = csrf.new_cookie_value()
    return value, csrf.form_token(svc.csrf_key, value)


def set_csrf_cookie(response: Response, svc: OidcService, org: str, value: str) -> None:
    response.set_cookie(
        csrf.COOKIE_NAME,
        value,
        path=cookie_path(org),
        httponly=True,
        secure=svc.secure_cookies(),
        samesite="Strict",
    )


def csrf_valid(svc: OidcService, token: str | None) -> bool:
    return csrf.form_token_matches(svc.csrf_key, request.cookies.get(csrf.COOKIE_NAME), token)


def set_session_cookie(response: Response, svc: OidcService, org: str, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=AUTH_SESSION_SECONDS,
        path=cookie_path(org),
        httponly=True,
        secure=svc.secure_cookies(),
        samesite="Lax",
    )


def clear_session_cookie(response: Response, svc: OidcService, org: str) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=cookie_path(org),
        httponly=True,
        secure=svc.secure_cookies(),
        samesite="Lax",
    )


async def current_session(svc: OidcService, org_id: UUID) -> asyncpg.Record | None:
    """Load the live auth-plane session of the request's cookie, or return None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > MAX_SESSION_TOKEN_CHARS:
        return None
    async with org_transaction(svc.pool, org_id) as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            AUTH_SESSION_BY_TOKEN, token_hash(token), org_id, svc.now()
        )
    return row
