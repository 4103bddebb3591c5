"""The UserInfo endpoint (OpenID Connect Core 5.3), protected as RFC 6750 describes.

The access token comes in the `Authorization: Bearer` header only; query
parameters would leak it into logs and referrers (RFC 6750 section 2.3).
It must be one of this issuer's access tokens, name the issuer in `aud`,
carry the `openid` scope and belong to a user who is still enabled.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from quart import request

from appliance.db.tenancy import org_transaction
from appliance.oidc.errors import BearerTokenMissing, InsufficientScope, InvalidToken
from appliance.oidc.jose import JoseError
from appliance.oidc.oidc_core import load_user, user_claims
from appliance.oidc.rfc9068 import validate_access_token
from appliance.oidc.service import OidcService

MAX_AUTHORIZATION_HEADER = 8192 + 16


def bearer_token(realm: str) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise BearerTokenMissing(realm=realm)
    if len(header) > MAX_AUTHORIZATION_HEADER:
        raise InvalidToken("the access token is too long", realm=realm)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise BearerTokenMissing(realm=realm)
    token = token.strip()
    if not token:
        raise InvalidToken("the Authorization header has no token after Bearer", realm=realm)
    return token


async def userinfo(service: OidcService, org_id: UUID, org_name: str) -> dict[str, Any]:
    issuer = service.issuer(org_name)
    token = bearer_token(issuer)
    try:
        validated = await validate_access_token(service, org_id, org_name, token)
    except JoseError:
        raise InvalidToken(
            "the access token is invalid, expired or revoked", realm=issuer
        ) from None
    if issuer not in validated.audiences:
        raise InvalidToken("the access token is not meant for this server (aud)", realm=issuer)
    if "openid" not in validated.scopes or "gid" not in validated.claims:
        raise InsufficientScope("the access token lacks the openid scope of a user", realm=issuer)
    try:
        user_id = UUID(validated.claims["sub"])
    except ValueError:
        raise InvalidToken("the access token does not name a user", realm=issuer) from None
    async with org_transaction(service.pool, org_id) as conn:
        row = await load_user(conn, org_id, user_id)
    if row is None:
        raise InvalidToken("the user of this access token is disabled or deleted", realm=issuer)
    return user_claims(row, validated.scopes)
