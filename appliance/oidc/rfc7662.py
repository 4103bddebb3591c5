"""Token introspection (RFC 7662).

Only authenticated confidential clients may introspect (section 4 requires
protection against token scanning). Any failure, whether unknown, expired,
revoked, forged, or a token of another org, returns `{"active": false}` and
nothing more (section 2.2). A refresh token is active only for the client it
was issued to.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from appliance.db.queries.oidc import REFRESH_BY_HASH
from appliance.db.tenancy import org_transaction
from appliance.oidc.clients import Client
from appliance.oidc.jose import JoseError
from appliance.oidc.params import Params
from appliance.oidc.rfc9068 import validate_access_token
from appliance.oidc.service import OidcService

INACTIVE: dict[str, Any] = {"active": False}
ACCESS_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "auth_time")


async def introspect(
    service: OidcService, org_id: UUID, org_name: str, client: Client, params: Params
) -> dict[str, Any]:
    token = params.require("token")
    # Each lookup returns {} when the token cannot be of its type, so the other one runs.
    if params.get("token_type_hint") == "refresh_token":
        result = await _refresh(service, org_id, org_name, client, token) or await _access(
            service, org_id, org_name, token
        )
    else:
        result = await _access(service, org_id, org_name, token) or await _refresh(
            service, org_id, org_name, client, token
        )
    return result or INACTIVE


async def _access(service: OidcService, org_id: UUID, org_name: str, token: str) -> dict[str, Any]:
    if token.count(".") != 2:
        return {}
    try:
        validated = await validate_access_token(service, org_id, org_name, token)
    except JoseError:
        return INACTIVE
    response: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    for name in ACCESS_CLAIMS:
        if name in validated.claims:
            response[name] = validated.claims[name]
    return response


async def _refresh(
    service: OidcService, org_id: UUID, org_name: str, client: Client, token: str
) -> dict[str, Any]:
    if "." in token or len(token) > 128:
        return {}
    async with org_transaction(service.pool, org_id) as conn:
        row = await conn.fetchrow(REFRESH_BY_HASH, org_id, hashlib.sha256(token.encode()).digest())
    now = service.now()
    if (
        row is None
        or row["client_id"] != client.client_id
        or row["rotated_at"] is not None
        or row["grant_revoked_at"] is not None
        or row["expires_at"] <= now
    ):
        return INACTIVE
    return {
        "active": True,
        "client_id": row["client_id"],
        "sub": str(row["user_id"]),
        "username": row["username"],
        "scope": row["scope"],
        "iat": int(row["created_at"].timestamp()),
        "exp": int(row["expires_at"].timestamp()),
        "iss": service.issuer(org_name),
    }
