"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

The relying party sends the user here with `id_token_hint`, an ID token this
issuer signed (section 2 allows an expired one). It may add `client_id`,
`post_logout_redirect_uri` and `state`. The redirect URI must be
one the client registered, exactly. Without a valid hint the user must
confirm on a CSRF-protected page, so a cross-site link cannot sign anyone
out. The session ends in the database, not only in the cookie.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.oidc import AUTH_SESSION_REVOKE
from appliance.db.tenancy import org_transaction
from appliance.oidc.authorize import ErrorPage, with_query
from appliance.oidc.claims import audiences, check_issuer
from appliance.oidc.errors import OAuthError
from appliance.oidc.jose import JoseError, parse_unverified, verify_compact
from appliance.oidc.pages import (
    clear_session_cookie,
    csrf_pair,
    csrf_valid,
    current_session,
    redirect_to,
    render_page,
    service,
    set_csrf_cookie,
)
from appliance.oidc.params import Params, form_params, query_params
from appliance.oidc.service import PLANE, OidcService
from appliance.oidc.web import error_page

blueprint = Blueprint("oidc_logout", __name__, template_folder="../web/templates")
blueprint.register_error_handler(ErrorPage, error_page)
CARRIED = ("client_id", "post_logout_redirect_uri", "state", "id_token_hint")


async def _hint_claims(svc: OidcService, org_id: Any, org: str, hint: str) -> dict[str, Any]:
    try:
        header, _, _, _ = parse_unverified(hint)
        keys = await svc.keys.verification_keys(org_id, header.get("kid"))
        claims = verify_compact(hint, keys, algorithms=frozenset({"ES256"}), typ=None).claims
        check_issuer(claims, svc.issuer(org))
        audiences(claims)
    except JoseError:
        raise ErrorPage(400, "The id_token_hint is not an ID token of this organisation.") from None
    return claims


@blueprint.route("/o/<org>/logout", methods=["GET", "POST"])
async def logout(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(org)
    try:
        params: Params = await form_params() if request.method == "POST" else query_params()
    except OAuthError as error:
        raise ErrorPage(400, f"The sign-out request is malformed: {error.description}.") from None
    hint = params.get("id_token_hint")
    claims = await _hint_claims(svc, org_id, org, hint) if hint is not None else None
    client_id = params.get("client_id")
    if claims is not None:
        hint_audiences = audiences(claims)
        if client_id is not None and client_id not in hint_audiences:
            raise ErrorPage(400, "The client_id does not match the audience of the id_token_hint.")
        client_id = client_id or hint_audiences[0]
    redirect_uri = params.get("post_logout_redirect_uri")
    if redirect_uri is not None:
        client = await svc.clients.get(org_id, client_id) if client_id is not None else None
        if client is None or redirect_uri not in client.post_logout_redirect_uris:
            raise ErrorPage(
                400, "The post_logout_redirect_uri is not registered for this application."
            )
    session = await current_session(svc, org_id)
    confirmed = claims is not None and (
        session is None or str(session["user_id"]) == claims.get("sub")
    )
    if request.method == "POST":
        if not csrf_valid(svc, params.get("csrf_token")):
            raise ErrorPage(403, "The sign-out form expired or was not sent by this site.")
        confirmed = True
    if not confirmed:
        cookie_value, token = csrf_pair(svc)
        carried = [(name, params.get(name)) for name in CARRIED if params.get(name) is not None]
        response = await render_page(
            "oidc/logout.html",
            200,
            org=org,
            action=f"/o/{org}/logout",
            csrf_token=token,
            carried=carried,
        )
        set_csrf_cookie(response, svc, org, cookie_value)
        return response
    if session is not None:
        now = svc.now()
        async with org_transaction(svc.pool, org_id) as conn:
            await conn.execute(AUTH_SESSION_REVOKE, org_id, session["id"], now)
            await append(
                conn,
                org_id,
                AuditEvent(
                    event_type="user.logout",
                    plane=PLANE,
                    actor=session["username"],
                    subject=session["username"],
                    outcome="success",
                    occurred_at=now,
                    data={"client_id": client_id} if client_id else {},
                ),
            )
    if redirect_uri is not None:
        response = redirect_to(with_query(redirect_uri, {"state": params.get("state")}))
    else:
        response = await render_page("oidc/logged_out.html", 200, org=org)
    clear_session_cookie(response, svc, org)
    return response
