"""Token revocation (RFC 7009).

A client may revoke only its own tokens. Revoking a refresh token revokes its
grant, so every refresh and access token of that authorization stops working
(section 2.1 recommends this). Revoking an access token lists its `jti` until
it expires. Unknown, foreign or already invalid tokens still get 200
(section 2.2): the caller learns nothing about tokens it does not hold.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from uuid import UUID

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.oidc import ACCESS_TOKEN_REVOKE, GRANT_REVOKE, REFRESH_BY_HASH
from appliance.db.tenancy import org_transaction
from appliance.log import log_fields
from appliance.oidc.clients import Client
from appliance.oidc.jose import JoseError
from appliance.oidc.params import Params
from appliance.oidc.rfc9068 import validate_access_token
from appliance.oidc.service import PLANE, OidcService

log = logging.getLogger("appliance.oidc.revocation")


async def revoke(
    service: OidcService, org_id: UUID, org_name: str, client: Client, params: Params
) -> None:
    token = params.require("token")
    if token.count(".") == 2:
        await _revoke_access_token(service, org_id, org_name, client, token)
    elif len(token) <= 128:
        await _revoke_refresh_token(service, org_id, client, token)


async def _revoke_refresh_token(
    service: OidcService, org_id: UUID, client: Client, token: str
) -> None:
    now = service.now()
    async with org_transaction(service.pool, org_id) as conn:
        row = await conn.fetchrow(REFRESH_BY_HASH, org_id, hashlib.sha256(token.encode()).digest())
        if row is None or row["client_id"] != client.client_id:
            return
        revoked = await conn.fetchrow(
            GRANT_REVOKE, org_id, row["grant_id"], now, "revoked_by_client"
        )
        if revoked is None:
            return
        await append(
            conn,
            org_id,
            AuditEvent(
                event_type="oidc.grant_revoked",
                plane=PLANE,
                actor=client.client_id,
                subject=str(row["user_id"]),
                outcome="success",
                occurred_at=now,
                data={"grant_id": str(row["grant_id"]), "token_type": "refresh_token"},
            ),
        )


async def _revoke_access_token(
    service: OidcService, org_id: UUID, org_name: str, client: Client, token: str
) -> None:
    try:
        validated = await validate_access_token(service, org_id, org_name, token)
    except JoseError as error:
        log.info(
            "revocation of an invalid access token ignored", extra=log_fields(reason=error.reason)
        )
        return
    claims = validated.claims
    if claims["client_id"] != client.client_id:
        return
    now = service.now()
    async with org_transaction(service.pool, org_id) as conn:
        await conn.execute(
            ACCESS_TOKEN_REVOKE,
            org_id,
            UUID(claims["jti"]),
            datetime.fromtimestamp(claims["exp"], UTC),
        )
        await append(
            conn,
            org_id,
            AuditEvent(
                event_type="oidc.access_token_revoked",
                plane=PLANE,
                actor=client.client_id,
                subject=str(claims["sub"]),
                outcome="success",
                occurred_at=now,
                data={"jti": claims["jti"]},
            ),
        )
