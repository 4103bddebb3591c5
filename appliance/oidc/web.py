"""Routes of the authorization endpoint and its login page (password + TOTP).

Login rules: the user row is locked per attempt, a TOTP code works once, and
`appliance.identity.users` locks a user after repeated failures. On top of
that, more than `source_limit.MAX_FAILURES` failed logins from one address within
`source_limit.WINDOW_SECONDS` are rejected with 429 before any factor is checked,
which bounds password guessing across users. The page shows the user only
that the login failed, and the audit chain records which factor was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from quart import Blueprint, Response, request
from quart.typing import ResponseReturnValue

from appliance.db.queries.oidc import AUTH_SESSION_BY_TOKEN
from appliance.db.tenancy import org_transaction
from appliance.errors import RateLimited
from appliance.identity.sessions import create_session, token_hash
from appliance.identity.users import LoginFailed, authenticate
from appliance.oidc.authorize import (
    AuthorizationRequest,
    ErrorPage,
    RedirectError,
    issue_code,
    needs_login,
    validate_authorization_request,
)
from appliance.oidc.errors import LoginRequired, OAuthError
from appliance.oidc.pages import (
    AUTH_SESSION_SECONDS,
    csrf_pair,
    csrf_valid,
    current_session,
    redirect_to,
    render_page,
    service,
    set_csrf_cookie,
    set_session_cookie,
)
from appliance.oidc.params import (
    MAX_QUERY_BYTES,
    Params,
    form_params,
    parse_urlencoded,
    query_params,
)
from appliance.oidc.service import PLANE, OidcService
from appliance.web.http import client_address

blueprint = Blueprint("oidc_web", __name__, template_folder="../web/templates")

LOGIN_FAILED_MESSAGE = (
    "Sign-in failed. Check your username, password and the current code of your authenticator app. "
    "Repeated failures lock the account for 15 minutes."
)


@blueprint.errorhandler(ErrorPage)
async def error_page(error: ErrorPage) -> ResponseReturnValue:
    return await render_page(
        "oidc/error.html",
        error.status,
        org=request.view_args.get("org", "") if request.view_args else "",
        message=error.message,
    )


@blueprint.errorhandler(RedirectError)
async def redirect_error(error: RedirectError) -> ResponseReturnValue:
    return redirect_to(error.location)


def _parse(parse: object) -> Params:
    try:
        return parse()  # type: ignore[operator,no-any-return]
    except OAuthError as error:
        raise ErrorPage(400, f"The sign-in request is malformed: {error.description}.") from None


@blueprint.get("/o/<org>/authorize")
async def authorize(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(org)
    params = _parse(query_params)
    authorization = await validate_authorization_request(svc, org_id, org, params)
    now = svc.now()
    session = await current_session(svc, org_id)
    auth_time: datetime | None = session["created_at"] if session is not None else None
    if session is not None and not needs_login(authorization, auth_time, now):
        async with org_transaction(svc.pool, org_id) as conn:
            location = await issue_code(
                conn,
                org_id,
                authorization,
                user_id=session["user_id"],
                session_id=session["id"],
                auth_time=session["created_at"],
                now=now,
            )
        return redirect_to(location)
    if "none" in authorization.prompt:
        raise authorization.error(
            LoginRequired("the user is not signed in; send the user without prompt=none")
        )
    return await login_page(
        org, authorization, request.query_string.decode("ascii", "replace"), 200
    )


async def login_page(
    org: str,
    authorization: AuthorizationRequest,
    authorize_query: str,
    status: int,
    *,
    message: str | None = None,
    username: str = "",
) -> Response:
    svc = service()
    cookie_value, token = csrf_pair(svc)
    response = await render_page(
        "oidc/login.html",
        status,
        org=org,
        client_name=authorization.client.client_name or authorization.client.client_id,
        action=f"/o/{org}/login",
        authorize=authorize_query,
        csrf_token=token,
        message=message,
        username=username,
    )
    set_csrf_cookie(response, svc, org, cookie_value)
    return response


@dataclass
class _LoginAttempt:
    outcome: str = "failed"  # "failed", "rate_limited" or "success"
    location: str = ""
    session_token: str = field(default="", repr=False)


async def _attempt_login(
    svc: OidcService, org_id: UUID, authorization: AuthorizationRequest, form: Params, source: str
) -> _LoginAttempt:
    """Check the rate limit and the user's factors, then open a session and issue a code.

    Failures are committed with the transaction, so they count even though the request fails.
    """
    attempt = _LoginAttempt()
    now = svc.now()
    async with org_transaction(svc.pool, org_id) as conn:
        try:
            await svc.source_limit.check(conn, source, now)
        except RateLimited:
            attempt.outcome = "rate_limited"
            return attempt

        try:
            user = await authenticate(
                conn,
                org_id,
                plane=PLANE,
                seal_key=svc.seal_key,
                username=form.get("username") or "",
                password=form.get("password") or "",
                totp=form.get("totp") or "",
                now=now,
                source=source,
            )
        except LoginFailed:
            await svc.source_limit.record_failure(conn, source, now)
            return attempt

        attempt.session_token, _ = await create_session(
            conn, org_id, user.id, plane=PLANE, now=now, lifetime_seconds=AUTH_SESSION_SECONDS
        )
        session = await conn.fetchrow(
            AUTH_SESSION_BY_TOKEN, token_hash(attempt.session_token), org_id, now
        )
        attempt.location = await issue_code(
            conn,
            org_id,
            authorization,
            user_id=user.id,
            session_id=session["id"] if session is not None else None,
            auth_time=now,
            now=now,
        )
        attempt.outcome = "success"
    return attempt


@blueprint.post("/o/<org>/login")
async def login(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(org)
    try:
        form = await form_params()
    except OAuthError as error:
        raise ErrorPage(400, f"The sign-in form is malformed: {error.description}.") from None
    if not csrf_valid(svc, form.get("csrf_token")):
        raise ErrorPage(
            403,
            "The sign-in form expired or was not sent by this site. "
            "Return to the application and start again.",
        )

    authorize_query = form.get("authorize") or ""
    params = _parse(lambda: parse_urlencoded(authorize_query.encode(), limit=MAX_QUERY_BYTES))
    authorization = await validate_authorization_request(svc, org_id, org, params)
    source = svc.source_limit.source_hash(client_address())
    attempt = await _attempt_login(svc, org_id, authorization, form, source)

    if attempt.outcome == "rate_limited":
        response = await login_page(
            org,
            authorization,
            authorize_query,
            429,
            message="Too many failed sign-ins from this address. Wait 15 minutes, then try again.",
        )
        response.headers["Retry-After"] = str(svc.source_limit.window_seconds)
        return response
    if attempt.outcome == "failed":
        username = (form.get("username") or "")[:63]
        return await login_page(
            org,
            authorization,
            authorize_query,
            401,
            message=LOGIN_FAILED_MESSAGE,
            username=username,
        )
    response = redirect_to(attempt.location, 303)
    set_session_cookie(response, svc, org, attempt.session_token)
    return response
