"""`private_key_jwt` client authentication (RFC 7523 section 2.2 and 3; OpenID Connect Core 9).

The client signs a JWT with a key whose public half it registered. The
assertion needs `iss` and `sub` equal to the client id, an `aud` naming this
issuer or the endpoint it is sent to, and an `exp` at most
`MAX_ASSERTION_LIFETIME` ahead. Its `jti` must be new for this client and is
stored until the assertion expires, so an intercepted assertion cannot be
replayed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from appliance.db.queries.oidc import ASSERTION_JTI_RECORD
from appliance.db.tenancy import org_transaction
from appliance.oidc.claims import CLOCK_SKEW_SECONDS, check_audience, check_times
from appliance.oidc.clients import Client
from appliance.oidc.jose import ASYMMETRIC_ALGS, JoseError, verify_compact
from appliance.oidc.service import OidcService

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Assertions are made for one request, but common clients (Authlib 1.9 by
# default) give them an hour. Each is single-use through its jti anyway, so
# an hour bounds only how long its jti is remembered.
MAX_ASSERTION_LIFETIME = 3600
MAX_JTI_CHARS = 256


async def verify_client_assertion(
    service: OidcService, org_id: UUID, client: Client, assertion: str, *, audiences: set[str]
) -> None:
    """Verify `assertion` for `client`; raise `JoseError` naming the failed check."""
    verified = verify_compact(assertion, client.keys, algorithms=ASYMMETRIC_ALGS, typ=None)
    claims = verified.claims
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise JoseError("claims iss and sub must both be the client_id")
    check_audience(claims, audiences)
    now = service.now()
    exp = check_times(claims, now=now.timestamp(), max_lifetime=MAX_ASSERTION_LIFETIME)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise JoseError("claim jti is missing or longer than 256 characters")
    keep_until = datetime.fromtimestamp(exp + CLOCK_SKEW_SECONDS, UTC)
    async with org_transaction(service.pool, org_id) as conn:
        recorded = await conn.fetchval(
            ASSERTION_JTI_RECORD, org_id, client.client_id, jti, keep_until
        )
    if recorded is None:
        raise JoseError("assertion jti was already used")
