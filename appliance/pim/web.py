"""The approver web page: server-rendered, no JavaScript.

Security:
- the session cookie is `HttpOnly`, `SameSite=Strict`, scoped to the org's
  PIM path, and `Secure` unless the plane runs on plain http on loopback
  (development only, see `cookies_must_be_secure`);
- every form carries a CSRF token: before sign-in a random value that must
  match a cookie of the same name (double submit), after sign-in an HMAC of
  the session token (`PimService.csrf_token`);
- the Content-Security-Policy allows only our own stylesheet and forms that
  post to ourselves: no script runs on the page at all.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from quart import Blueprint, Response, redirect, render_template, request, send_from_directory
from quart.typing import ResponseReturnValue

from appliance.errors import ApiError, NotFound
from appliance.pim import decisions
from appliance.pim.api import checked_org, service, visible_requests
from appliance.pim.errors import Unauthorized
from appliance.pim.service import CallContext
from appliance.pim.validation import MAX_COMMENT_CHARS, parse_login
from appliance.web.http import client_address

WEB_ROOT: Final = Path(__file__).resolve().parent.parent / "web"
SESSION_COOKIE: Final = "pim_session"
LOGIN_CSRF_COOKIE: Final = "pim_login_csrf"
PAGE_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Messages shown after a redirect, chosen by code so that no request text is
# ever reflected into the page.
NOTICES: Final = {
    "approved": "Your approval was recorded.",
    "denied": "The request was denied.",
    "signed_out": "You are signed out.",
    "login_failed": "Sign-in failed: check the user name, password and current TOTP code.",
    "rate_limited": "Too many failed sign-ins from this address; try again later.",
    "invalid_request": "The form was incomplete or invalid; try again.",
    "csrf": "The form expired; reload the page and try again.",
    "self_approval_forbidden": "You cannot decide your own request.",
    "already_decided": "You already decided this request; each approver counts once.",
    "request_expired": "That request expired before it was decided.",
    "request_cancelled": "That request was cancelled by its requester.",
    "request_denied": "That request was already denied.",
    "request_already_granted": "That request was already approved.",
    "not_found": "That request does not exist or is not yours to decide.",
}

blueprint = Blueprint("pim_web", __name__, template_folder=str(WEB_ROOT / "templates"))


def base_path(org: str) -> str:
    return f"/o/{org}/pim/"


def _page(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _redirect(org: str, notice: str | None = None, path: str = "") -> Response:
    target = base_path(org) + path + (f"?notice={notice}" if notice else "")
    response: Response = redirect(target, 303)  # type: ignore[assignment]
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def _set_cookie(response: Response, org: str, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=base_path(org),
        secure=service().secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def _notice() -> str | None:
    return NOTICES.get(request.args.get("notice", ""))


def format_duration(seconds: int) -> str:
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if rest else f"{hours} h"


@blueprint.get("/o/<org>/pim/static/<name>")
async def static(org: str, name: str) -> ResponseReturnValue:
    checked_org(org)
    if name != "pim.css":
        raise NotFound(f"no static file {name[:64]!r}")
    response: Response = await send_from_directory(WEB_ROOT / "static", name)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blueprint.get("/o/<org>/pim/login")
async def login_form(org: str) -> ResponseReturnValue:
    await service().org_id(checked_org(org))
    csrf = secrets.token_urlsafe(24)
    body = await render_template("pim/login.html", org=org, csrf=csrf, notice=_notice())
    response = _page(body)
    _set_cookie(response, org, LOGIN_CSRF_COOKIE, csrf, max_age=900)
    return response


@blueprint.post("/o/<org>/pim/login")
async def login(org: str) -> ResponseReturnValue:
    checked_org(org)
    form = await request.form
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    submitted = form.get("csrf", "")
    if not cookie or not secrets.compare_digest(cookie.encode(), submitted.encode()):
        return _redirect(org, "csrf", "login")
    try:
        body = parse_login({name: form.get(name) for name in ("username", "password", "totp")})
        token, expires_at, _ = await service().login(org, body, source=client_address())
    except ApiError as error:
        notice = error.error if error.error in NOTICES else "invalid_request"
        return _redirect(org, notice, "login")
    response = _redirect(org)
    max_age = max(1, int((expires_at - service().clock()).total_seconds()))
    _set_cookie(response, org, SESSION_COOKIE, token, max_age=max_age)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=base_path(org))
    return response


@blueprint.post("/o/<org>/pim/logout")
async def logout(org: str) -> ResponseReturnValue:
    checked_org(org)
    token = request.cookies.get(SESSION_COOKIE, "")
    form = await request.form
    if token and service().check_csrf(token, form.get("csrf", "")):
        await service().logout(org, token)
    response = _redirect(org, "signed_out", "login")
    response.delete_cookie(SESSION_COOKIE, path=base_path(org))
    return response


@blueprint.get("/o/<org>/pim/")
async def pending_page(org: str) -> ResponseReturnValue:
    checked_org(org)
    svc = service()
    token = request.cookies.get(SESSION_COOKIE)

    async def work(ctx: CallContext) -> dict[str, Any]:
        requests = await visible_requests(ctx, pending_only=False, limit=100)
        return {
            "user": ctx.actor.username,
            "to_decide": [r for r in requests if r["can_decide"]],
            "mine": [r for r in requests if r["requester"] == ctx.actor.username][:20],
            "csrf": svc.csrf_token(ctx.session_token),
        }

    try:
        view = await svc.guarded(org, token, work)
    except Unauthorized:
        return _redirect(org, None, "login")
    body = await render_template(
        "pim/pending.html",
        org=org,
        notice=_notice(),
        duration=format_duration,
        max_comment=MAX_COMMENT_CHARS,
        **view,
    )
    return _page(body)


@blueprint.post("/o/<org>/pim/requests/<request_id>/decision")
async def decide(org: str, request_id: str) -> ResponseReturnValue:
    checked_org(org)
    svc = service()
    token = request.cookies.get(SESSION_COOKIE, "")
    form = await request.form
    if not token:
        return _redirect(org, None, "login")
    if not svc.check_csrf(token, form.get("csrf", "")):
        return _redirect(org, "csrf")
    action = form.get("action")
    comment = (form.get("comment") or "").strip()
    if action not in ("approve", "deny") or len(comment) > MAX_COMMENT_CHARS:
        return _redirect(org, "invalid_request")
    try:
        parsed = UUID(request_id)
    except ValueError:
        return _redirect(org, "not_found")

    async def work(ctx: CallContext) -> None:
        await decisions.decide(
            ctx.conn,
            ctx.org_id,
            parsed,
            actor=ctx.actor,
            approve=action == "approve",
            comment=comment,
            now=ctx.now,
        )

    try:
        await svc.guarded(org, token, work)
    except Unauthorized:
        return _redirect(org, None, "login")
    except ApiError as error:
        return _redirect(org, error.error if error.error in NOTICES else "invalid_request")
    return _redirect(org, "approved" if action == "approve" else "denied")
