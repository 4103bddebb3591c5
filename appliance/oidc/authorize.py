"""The authorization endpoint (RFC 6749 section 4.1.1; OpenID Connect Core 3.1.2): code flow only.

Validation runs in two phases. Until the client and its redirect URI are
known to be valid, every error is shown to the user as a page, because
redirecting to an unverified URI would make the server an open redirector
(RFC 6749 section 4.1.2.1). After that, errors go back to the client as
`error`, `error_description`, `state` and `iss` query parameters.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

import asyncpg

from appliance.db.queries.oidc import CODE_INSERT, GRANT_INSERT
from appliance.oidc import rfc7636
from appliance.oidc.clients import Client
from appliance.oidc.errors import (
    InvalidRequest,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from appliance.oidc.params import Params
from appliance.oidc.rfc8252 import find_redirect_uri
from appliance.oidc.rfc8707 import check_resources, check_scope
from appliance.oidc.service import OidcService

# A client exchanges its code right after the redirect, so a minute covers slow
# networks and keeps a leaked code short-lived. RFC 6749 section 4.1.2
# recommends 10 minutes at most.
CODE_TTL_SECONDS = 60
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
MAX_AGE_LIMIT = 10 * 365 * 86400


class ErrorPage(Exception):
    """An authorization error shown to the user, because the client cannot be trusted with it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RedirectError(Exception):
    """An authorization error to send back to the validated redirect URI."""

    def __init__(
        self, redirect_uri: str, error: OAuthError, state: str | None, issuer: str
    ) -> None:
        super().__init__(error.description)
        self.location = with_query(
            redirect_uri,
            {
                "error": error.error,
                "error_description": error.description,
                "state": state,
                "iss": issuer,
            },
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    state: str | None
    scopes: list[str]
    nonce: str | None
    code_challenge: str = field(repr=False)
    resources: list[str]
    prompt: frozenset[str]
    max_age: int | None
    issuer: str

    def error(self, error: OAuthError) -> RedirectError:
        return RedirectError(self.redirect_uri, error, self.state, self.issuer)


def with_query(uri: str, values: dict[str, str | None]) -> str:
    """Append `values` (None values skipped) to the query of `uri`, keeping its own query."""
    query = urlencode({name: value for name, value in values.items() if value is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


async def validate_authorization_request(
    service: OidcService, org_id: UUID, org_name: str, params: Params
) -> AuthorizationRequest:
    client_id = params.get("client_id")
    if client_id is None:
        raise ErrorPage(
            400, "The request has no client_id. Start the sign-in again from the application."
        )
    client = await service.clients.get(org_id, client_id)
    if client is None or client.disabled:
        raise ErrorPage(
            400, "The application that sent you here is not registered with this organisation."
        )
    requested_uri = params.get("redirect_uri")
    if requested_uri is None:
        raise ErrorPage(
            400, "The request has no redirect_uri. The application must send the one it registered."
        )
    redirect_uri = find_redirect_uri(requested_uri, list(client.redirect_uris))
    if redirect_uri is None:
        raise ErrorPage(
            400,
            "The redirect_uri of this request is not registered for the application, "
            "so you are not sent back to it.",
        )
    issuer = service.issuer(org_name)
    state = params.get("state")
    try:
        return _validate_rest(client, redirect_uri, state, params, issuer)
    except OAuthError as error:
        raise RedirectError(redirect_uri, error, state, issuer) from None


def _validate_rest(
    client: Client, redirect_uri: str, state: str | None, params: Params, issuer: str
) -> AuthorizationRequest:
    if "request" in params:
        raise RequestNotSupported(
            "request objects are not supported: send the parameters in the query"
        )
    if "request_uri" in params:
        raise RequestUriNotSupported(
            "request_uri is not supported: send the parameters in the query"
        )
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is missing: send response_type=code")
    if response_type != "code":
        raise UnsupportedResponseType(
            f"response_type {response_type[:40]!r} is not supported: use code"
        )
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client is not registered for the authorization code flow")
    response_mode = params.get("response_mode")
    if response_mode not in (None, "query"):
        raise InvalidRequest(f"response_mode {response_mode[:40]!r} is not supported: use query")
    challenge = rfc7636.check_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    scopes = check_scope(params.get("scope"), client, user_present=True)
    resources = check_resources(params.resources, client)
    prompt = frozenset((params.get("prompt") or "").split())
    if not prompt <= PROMPT_VALUES:
        raise InvalidRequest(f"prompt values must be among {sorted(PROMPT_VALUES)}")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other prompt values")
    max_age = _max_age(params.get("max_age"))
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        state=state,
        scopes=scopes,
        nonce=params.get("nonce"),
        code_challenge=challenge,
        resources=resources,
        prompt=prompt,
        max_age=max_age,
        issuer=issuer,
    )


def _max_age(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_AGE_LIMIT:
        raise InvalidRequest("max_age must be a non-negative integer number of seconds")
    return int(raw)


def needs_login(request: AuthorizationRequest, auth_time: datetime | None, now: datetime) -> bool:
    if auth_time is None or "login" in request.prompt:
        return True
    return request.max_age is not None and auth_time + timedelta(seconds=request.max_age) < now


async def issue_code(
    conn: asyncpg.Connection,
    org_id: UUID,
    request: AuthorizationRequest,
    *,
    user_id: UUID,
    session_id: UUID | None,
    auth_time: datetime,
    now: datetime,
) -> str:
    """Store a grant and its one-time code; return the redirect location for the client."""
    client = request.client
    grant_id = uuid.uuid4()
    lifetime = (
        client.refresh_token_ttl
        if "refresh_token" in client.grant_types
        else client.access_token_ttl
    )
    await conn.execute(
        GRANT_INSERT,
        grant_id,
        org_id,
        client.client_id,
        user_id,
        " ".join(request.scopes),
        request.resources,
        auth_time,
        now,
        now + timedelta(seconds=lifetime + CODE_TTL_SECONDS),
    )
    code = secrets.token_urlsafe(32)
    await conn.execute(
        CODE_INSERT,
        hashlib.sha256(code.encode()).digest(),
        org_id,
        grant_id,
        client.client_id,
        request.redirect_uri,
        request.code_challenge,
        request.nonce,
        session_id,
        now,
        now + timedelta(seconds=CODE_TTL_SECONDS),
    )
    return with_query(
        request.redirect_uri, {"code": code, "state": request.state, "iss": request.issuer}
    )
