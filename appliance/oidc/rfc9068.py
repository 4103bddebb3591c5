"""JWT access tokens (RFC 9068): issuance and validation by this server.

Header `typ: at+jwt`, ES256. Claims: `iss`, `sub` (the user id, or the
client id for client credentials), `aud` (the RFC 8707 resources, or the
issuer itself when none was requested, which is what userinfo accepts),
`client_id`, `iat`, `exp`, `jti`, `scope`, and for users `auth_time`. A
private claim `gid` names the grant, so revoking the grant (code replay,
refresh-token reuse, revocation of the refresh token) makes every access
token of it inactive at introspection and userinfo.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from appliance.db.queries.oidc import ACCESS_TOKEN_REVOCATION
from appliance.db.tenancy import org_transaction
from appliance.oidc.claims import audiences, check_issuer, check_times
from appliance.oidc.jose import Es256Signer, JoseError, parse_unverified, verify_compact
from appliance.oidc.service import OidcService

TYP = "at+jwt"
OUR_ALGORITHMS = frozenset({"ES256"})


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_in: int


def issue_access_token(
    signer: Es256Signer,
    *,
    issuer: str,
    subject: str,
    client_id: str,
    audience: list[str],
    scope: str,
    now: int,
    ttl: int,
    grant_id: UUID | None = None,
    auth_time: int | None = None,
) -> IssuedAccessToken:
    jti = str(uuid.uuid4())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience[0] if len(audience) == 1 else audience,
        "client_id": client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
    }
    if scope:
        claims["scope"] = scope
    if auth_time is not None:
        claims["auth_time"] = auth_time
    if grant_id is not None:
        claims["gid"] = str(grant_id)
    return IssuedAccessToken(signer.sign(claims, typ=TYP), jti, ttl)


@dataclass(frozen=True)
class AccessTokenClaims:
    claims: dict[str, Any]
    audiences: list[str]

    @property
    def scopes(self) -> set[str]:
        scope = self.claims.get("scope")
        return set(scope.split(" ")) if isinstance(scope, str) else set()


async def validate_access_token(
    service: OidcService, org_id: UUID, org_name: str, token: str
) -> AccessTokenClaims:
    """Verify an access token of this org's issuer and check it is not revoked.

    Raises `JoseError` naming the failed check. Tokens of another org fail,
    because they name another issuer and are signed by another org's key.
    """
    header, _, _, _ = parse_unverified(token)
    keys = await service.keys.verification_keys(org_id, header.get("kid"))
    verified = verify_compact(token, keys, algorithms=OUR_ALGORITHMS, typ=TYP)
    claims = verified.claims
    check_issuer(claims, service.issuer(org_name))
    check_times(claims, now=service.now().timestamp())
    aud = audiences(claims)
    jti = claims.get("jti")
    grant_id = claims.get("gid")
    if (
        not isinstance(jti, str)
        or not isinstance(claims.get("sub"), str)
        or not isinstance(claims.get("client_id"), str)
    ):
        raise JoseError("claims jti, sub or client_id are missing")
    try:
        jti_uuid = UUID(jti)
        grant_uuid = UUID(grant_id) if grant_id is not None else None
    except (ValueError, TypeError, AttributeError):
        raise JoseError("claim jti or gid is not a UUID") from None
    async with org_transaction(service.pool, org_id) as conn:
        row = await conn.fetchrow(ACCESS_TOKEN_REVOCATION, org_id, jti_uuid, grant_uuid)
    assert row is not None
    if row["token_revoked"] or row["grant_revoked"]:
        raise JoseError("token was revoked")
    return AccessTokenClaims(claims, aud)
