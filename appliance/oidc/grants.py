"""The token endpoint's grants (RFC 6749 sections 4.1.3, 4.4 and 6).

- `authorization_code`: a code works once. Any later use of it, including a
  request racing the first one, revokes the grant and with it every token
  issued from the code (RFC 6749 section 4.1.2; OAuth 2.1 section 4.1.3).
- `refresh_token`: every use returns a new refresh token and marks the old
  one rotated. Presenting a rotated token again is reuse: the whole family
  (the grant) is revoked (OAuth 2.1 section 4.3.1; RFC 9700 section 4.14.2).
- `client_credentials`: no user, no refresh token, no database write. This
  is the high-volume path, served from the client and key caches.

Failures that must be remembered (a consumed code, a revoked family) are
committed before the error is raised.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.oidc import (
    CODE_CONSUME,
    CODE_FOR_UPDATE,
    GRANT_REVOKE,
    REFRESH_FOR_UPDATE,
    REFRESH_INSERT,
    REFRESH_ROTATE,
)
from appliance.db.tenancy import org_transaction
from appliance.log import log_fields
from appliance.oidc import oidc_core, rfc7636
from appliance.oidc.client_auth import authenticate_client
from appliance.oidc.clients import Client
from appliance.oidc.errors import InvalidGrant, OAuthError, UnauthorizedClient, UnsupportedGrantType
from appliance.oidc.jose import Es256Signer
from appliance.oidc.params import Params
from appliance.oidc.rfc8707 import check_resources, check_scope, narrow_resources, narrow_scope
from appliance.oidc.rfc9068 import issue_access_token
from appliance.oidc.service import PLANE, OidcService

log = logging.getLogger("appliance.oidc.token")

MAX_CODE_CHARS = 128
MAX_REFRESH_TOKEN_CHARS = 128


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


class _Context:
    """Request state shared by the grants: org, issuer, client, parameters and request time."""

    def __init__(
        self, service: OidcService, org_id: UUID, org_name: str, client: Client, params: Params
    ) -> None:
        self.service = service
        self.org_id = org_id
        self.org_name = org_name
        self.issuer = service.issuer(org_name)
        self.client = client
        self.params = params
        self.now = service.now()
        self.epoch = int(self.now.timestamp())


Grant = Callable[[_Context], Awaitable[dict[str, Any]]]


async def token_request(service: OidcService, org_name: str, params: Params) -> dict[str, Any]:
    """Run a token request and return the RFC 6749 section 5.1 response body."""
    grant_type = params.require("grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(
            f"grant_type {grant_type[:64]!r} is not supported: "
            "use authorization_code, refresh_token or client_credentials"
        )
    org_id = await service.org_id(org_name)
    client = await authenticate_client(
        service, org_id, org_name, params, endpoint=f"{service.issuer(org_name)}/token"
    )
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client is not registered for grant_type {grant_type}")
    return await grant(_Context(service, org_id, org_name, client, params))


async def client_credentials(ctx: _Context) -> dict[str, Any]:
    scopes = check_scope(ctx.params.get("scope"), ctx.client, user_present=False)
    resources = check_resources(ctx.params.resources, ctx.client)
    signer = await ctx.service.keys.signer(ctx.org_id)
    scope = " ".join(scopes)
    access = issue_access_token(
        signer,
        issuer=ctx.issuer,
        subject=ctx.client.client_id,
        client_id=ctx.client.client_id,
        audience=resources or [ctx.issuer],
        scope=scope,
        now=ctx.epoch,
        ttl=ctx.client.access_token_ttl,
    )
    response: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
    }
    if scope:
        response["scope"] = scope
    log.info(
        "tokens issued",
        extra=log_fields(
            org=ctx.org_name, client_id=ctx.client.client_id, grant_type="client_credentials"
        ),
    )
    return response


async def authorization_code(ctx: _Context) -> dict[str, Any]:
    code = ctx.params.require("code")
    redirect_uri = ctx.params.require("redirect_uri")
    verifier = ctx.params.get("code_verifier")
    if len(code) > MAX_CODE_CHARS:
        raise InvalidGrant("the authorization code is invalid, expired or already used")
    # Fetched before the transaction: a second pool connection taken while
    # holding the code's row lock could deadlock requests racing for it.
    signer = await ctx.service.keys.signer(ctx.org_id)
    failure: OAuthError | None = None
    async with org_transaction(ctx.service.pool, ctx.org_id) as conn:
        row = await conn.fetchrow(CODE_FOR_UPDATE, ctx.org_id, token_hash(code))
        try:
            if row is None or row["client_id"] != ctx.client.client_id:
                raise _invalid_grant("unknown_code" if row is None else "code_of_other_client", ctx)
            if row["consumed_at"] is not None:
                await _revoke_family(conn, ctx, row["grant_id"], "authorization_code_replayed")
                raise _invalid_grant("code_replayed", ctx)
            await conn.execute(CODE_CONSUME, ctx.org_id, token_hash(code), ctx.now)
            if row["expires_at"] <= ctx.now:
                raise _invalid_grant("code_expired", ctx)
            if redirect_uri != row["redirect_uri"]:
                raise _invalid_grant("redirect_uri_mismatch", ctx)
            rfc7636.verify(verifier, row["code_challenge"])
            return await _issue_user_tokens(
                conn, ctx, signer, row, scope=row["scope"], nonce=row["nonce"]
            )
        except OAuthError as error:
            failure = error
    assert failure is not None
    raise failure


async def refresh_token(ctx: _Context) -> dict[str, Any]:
    presented = ctx.params.require("refresh_token")
    if len(presented) > MAX_REFRESH_TOKEN_CHARS:
        raise InvalidGrant("the refresh token is invalid, expired or revoked")
    signer = await ctx.service.keys.signer(ctx.org_id)
    failure: OAuthError | None = None
    async with org_transaction(ctx.service.pool, ctx.org_id) as conn:
        row = await conn.fetchrow(REFRESH_FOR_UPDATE, ctx.org_id, token_hash(presented))
        try:
            if row is None or row["client_id"] != ctx.client.client_id:
                raise _invalid_grant(
                    "unknown_refresh_token" if row is None else "refresh_token_of_other_client", ctx
                )
            if row["rotated_at"] is not None:
                await _revoke_family(conn, ctx, row["grant_id"], "refresh_token_reused")
                raise _invalid_grant("refresh_token_reused", ctx)
            if row["grant_revoked_at"] is not None:
                raise _invalid_grant("grant_revoked", ctx)
            if row["expires_at"] <= ctx.now:
                raise _invalid_grant("refresh_token_expired", ctx)
            scope = narrow_scope(ctx.params.get("scope"), row["scope"])
            await conn.execute(REFRESH_ROTATE, ctx.org_id, token_hash(presented), ctx.now)
            return await _issue_user_tokens(conn, ctx, signer, row, scope=scope, nonce=None)
        except OAuthError as error:
            failure = error
    assert failure is not None
    raise failure


async def _issue_user_tokens(
    conn: asyncpg.Connection,
    ctx: _Context,
    signer: Es256Signer,
    row: asyncpg.Record,
    *,
    scope: str,
    nonce: str | None,
) -> dict[str, Any]:
    """Issue the access token, ID token (for `openid`) and next refresh token of a user grant."""
    if row["grant_revoked_at"] is not None:
        raise _invalid_grant("grant_revoked", ctx)
    user = await oidc_core.load_user(conn, ctx.org_id, row["user_id"])
    if user is None:
        raise _invalid_grant("user_disabled_or_deleted", ctx)
    scopes = set(scope.split(" ")) if scope else set()
    resources = narrow_resources(
        check_resources(ctx.params.resources, ctx.client), row["resources"]
    )
    audience = resources or [ctx.issuer]
    if "openid" in scopes and ctx.issuer not in audience:
        audience = [*audience, ctx.issuer]
    grant_expires: datetime = row["grant_expires_at"]
    ttl = max(1, min(ctx.client.access_token_ttl, int((grant_expires - ctx.now).total_seconds())))
    auth_time = int(row["auth_time"].timestamp())
    access = issue_access_token(
        signer,
        issuer=ctx.issuer,
        subject=str(row["user_id"]),
        client_id=ctx.client.client_id,
        audience=audience,
        scope=scope,
        now=ctx.epoch,
        ttl=ttl,
        grant_id=row["grant_id"],
        auth_time=auth_time,
    )
    response: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "scope": scope,
    }
    if "openid" in scopes:
        response["id_token"] = oidc_core.issue_id_token(
            signer,
            issuer=ctx.issuer,
            client_id=ctx.client.client_id,
            user=user,
            scopes=scopes,
            now=ctx.epoch,
            auth_time=auth_time,
            nonce=nonce,
            access_token=access.token,
        )
    if "refresh_token" in ctx.client.grant_types and grant_expires > ctx.now:
        refresh = new_refresh_token()
        expires_at = min(ctx.now + timedelta(seconds=ctx.client.refresh_token_ttl), grant_expires)
        await conn.execute(
            REFRESH_INSERT,
            token_hash(refresh),
            ctx.org_id,
            row["grant_id"],
            ctx.client.client_id,
            ctx.now,
            expires_at,
        )
        response["refresh_token"] = refresh
    log.info(
        "tokens issued",
        extra=log_fields(
            org=ctx.org_name, client_id=ctx.client.client_id, grant_id=str(row["grant_id"])
        ),
    )
    return response


def _invalid_grant(reason: str, ctx: _Context) -> InvalidGrant:
    log.info(
        "token request rejected",
        extra=log_fields(org=ctx.org_name, client_id=ctx.client.client_id, reason=reason),
    )
    if reason.startswith("refresh") or reason == "grant_revoked":
        return InvalidGrant("the refresh token is invalid, expired or revoked")
    return InvalidGrant(
        "the authorization code is invalid, expired or already used, or redirect_uri differs"
    )


async def _revoke_family(
    conn: asyncpg.Connection, ctx: _Context, grant_id: UUID, reason: str
) -> None:
    """Revoke a grant after a replay, and audit it as a possible token theft."""
    revoked = await conn.fetchrow(GRANT_REVOKE, ctx.org_id, grant_id, ctx.now, reason)
    await append(
        conn,
        ctx.org_id,
        AuditEvent(
            event_type="oidc.grant_revoked",
            plane=PLANE,
            actor=ctx.client.client_id,
            subject=str(revoked["user_id"]) if revoked is not None else str(grant_id),
            outcome="failure",
            occurred_at=ctx.now,
            failure_reason=reason,
            data={"grant_id": str(grant_id), "already_revoked": revoked is None},
        ),
    )


GRANTS: dict[str, Grant] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
}
