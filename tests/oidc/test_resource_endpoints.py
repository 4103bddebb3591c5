"""Userinfo (RFC 6750 errors), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from jwcrypto import jwk
from quart.typing import TestClientProtocol as Client

from appliance.keys.signing import SigningKeyStore
from appliance.settings import Plane
from tests.conftest import Database
from tests.oidc.conftest import Tenant, make_tenant, tokens_for_user
from tests.oidc.forge import hs256_with_public_key, signed, unsigned


async def _userinfo(client: Client, tenant: Tenant, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.get(f"/o/{tenant.org}/userinfo", headers=headers)


async def _introspect(client: Client, tenant: Tenant, token: str, **extra: str) -> dict[str, Any]:
    response = await client.post(
        f"/o/{tenant.org}/introspect", form={"token": token, **extra}, headers=tenant.basic()
    )
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


async def _service_token(client: Client, tenant: Tenant) -> str:
    response = await client.post(
        f"/o/{tenant.org}/token",
        form={"grant_type": "client_credentials", "scope": "api.read"},
        headers=tenant.basic(tenant.service_id, tenant.service_secret),
    )
    return str((await response.get_json())["access_token"])


async def _org_key(
    database: Database, superuser: asyncpg.Connection, tenant: Tenant
) -> tuple[str, jwk.JWK]:
    store = SigningKeyStore("auth", database.master_secrets[Plane.AUTH])
    key = await store.active(superuser, tenant.org_id, now=tenant.clock.now)
    return key.kid, key.key


def _access_claims(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    now = int(tenant.clock.now.timestamp())
    claims: dict[str, Any] = {
        "iss": tenant.issuer,
        "sub": str(tenant.user_id),
        "aud": tenant.issuer,
        "client_id": tenant.confidential_id,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "scope": "openid profile",
        "gid": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return claims


async def test_userinfo_returns_claims(client: Client, tenant: Tenant) -> None:
    tokens = await tokens_for_user(client, tenant, scope="openid profile email")
    response = await _userinfo(client, tenant, tokens["access_token"])
    assert response.status_code == 200
    claims = await response.get_json()
    assert claims == {
        "sub": str(tenant.user_id),
        "preferred_username": "alice",
        "name": "Alice Example",
        "email": "alice@example.com",
        "email_verified": False,
    }


async def test_userinfo_without_token_challenges(client: Client, tenant: Tenant) -> None:
    response = await _userinfo(client, tenant, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{tenant.issuer}"'


async def test_userinfo_with_garbage_token(client: Client, tenant: Tenant) -> None:
    response = await _userinfo(client, tenant, "not-a-token")
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{tenant.issuer}", error="invalid_token"')
    assert (await response.get_json())["error"] == "invalid_token"


async def test_userinfo_service_token_is_insufficient_scope(client: Client, tenant: Tenant) -> None:
    response = await _userinfo(client, tenant, await _service_token(client, tenant))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_userinfo_rejects_token_of_other_org(
    client: Client, tenant: Tenant, database: Database, superuser: asyncpg.Connection
) -> None:
    other = await make_tenant(database, superuser, tenant.clock)
    tokens = await tokens_for_user(client, other)
    response = await _userinfo(client, tenant, tokens["access_token"])
    assert response.status_code == 401
    assert (await _introspect(client, tenant, tokens["access_token"])) == {"active": False}


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("alg-none", 401),
        ("hs256-confusion", 401),
        ("wrong-iss", 401),
        ("wrong-aud", 401),
        ("wrong-typ", 401),
        ("expired", 401),
        ("future-iat", 401),
        ("valid-forgery-check", 200),
    ],
)
async def test_userinfo_rejects_forged_tokens(
    client: Client,
    tenant: Tenant,
    database: Database,
    superuser: asyncpg.Connection,
    case: str,
    status: int,
) -> None:
    tokens = await tokens_for_user(
        client, tenant
    )  # a real grant, so "valid-forgery-check" has a gid
    kid, key = await _org_key(database, superuser, tenant)
    public = jwk.JWK(**key.export_public(as_dict=True))
    now = int(tenant.clock.now.timestamp())
    claims = _access_claims(tenant)
    from appliance.oidc.jose import parse_unverified

    claims["gid"] = parse_unverified(tokens["access_token"])[1]["gid"]
    token = {
        "alg-none": lambda: unsigned(claims, typ="at+jwt", kid=kid),
        "hs256-confusion": lambda: hs256_with_public_key(public, claims, typ="at+jwt", kid=kid),
        "wrong-iss": lambda: signed(
            key, {**claims, "iss": "https://evil.example/o/x"}, typ="at+jwt", kid=kid
        ),
        "wrong-aud": lambda: signed(
            key, {**claims, "aud": "https://api.example/"}, typ="at+jwt", kid=kid
        ),
        "wrong-typ": lambda: signed(key, claims, typ="JWT", kid=kid),
        "expired": lambda: signed(key, {**claims, "exp": now - 31}, typ="at+jwt", kid=kid),
        "future-iat": lambda: signed(
            key, {**claims, "iat": now + 120, "exp": now + 400}, typ="at+jwt", kid=kid
        ),
        "valid-forgery-check": lambda: signed(key, claims, typ="at+jwt", kid=kid),
    }[case]()
    assert (await _userinfo(client, tenant, token)).status_code == status


async def test_access_token_expiry_honours_skew(client: Client, tenant: Tenant) -> None:
    tokens = await tokens_for_user(client, tenant)
    tenant.clock.advance(tokens["expires_in"] + 20)
    assert (await _userinfo(client, tenant, tokens["access_token"])).status_code == 200
    tenant.clock.advance(15)
    assert (await _userinfo(client, tenant, tokens["access_token"])).status_code == 401


async def test_access_token_from_slightly_ahead_clock(client: Client, tenant: Tenant) -> None:
    tokens = await tokens_for_user(client, tenant)
    tenant.clock.advance(-20)
    assert (await _userinfo(client, tenant, tokens["access_token"])).status_code == 200
    tenant.clock.advance(-40)
    assert (await _userinfo(client, tenant, tokens["access_token"])).status_code == 401


async def test_introspection_of_service_token(client: Client, tenant: Tenant) -> None:
    token = await _service_token(client, tenant)
    body = await _introspect(client, tenant, token)
    assert body["active"] is True
    assert body["client_id"] == tenant.service_id
    assert body["scope"] == "api.read"
    assert body["iss"] == tenant.issuer


async def test_introspection_needs_confidential_client(client: Client, tenant: Tenant) -> None:
    token = await _service_token(client, tenant)
    response = await client.post(
        f"/o/{tenant.org}/introspect", form={"token": token, "client_id": tenant.public_id}
    )
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "invalid_client"


async def test_introspection_of_garbage_is_inactive(client: Client, tenant: Tenant) -> None:
    for token in ["x", "a.b.c", "x" * 8000, unsigned({"iss": tenant.issuer})]:
        assert await _introspect(client, tenant, token) == {"active": False}


async def test_revoked_access_token_is_inactive(client: Client, tenant: Tenant) -> None:
    token = await _service_token(client, tenant)
    response = await client.post(
        f"/o/{tenant.org}/revoke",
        form={"token": token},
        headers=tenant.basic(tenant.service_id, tenant.service_secret),
    )
    assert response.status_code == 200
    assert await _introspect(client, tenant, token) == {"active": False}


async def test_other_client_cannot_revoke(client: Client, tenant: Tenant) -> None:
    token = await _service_token(client, tenant)
    response = await client.post(
        f"/o/{tenant.org}/revoke", form={"token": token}, headers=tenant.basic()
    )
    assert response.status_code == 200
    assert (await _introspect(client, tenant, token))["active"] is True


async def test_revoking_refresh_token_revokes_grant(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    tokens = await tokens_for_user(client, tenant)
    response = await client.post(
        f"/o/{tenant.org}/revoke",
        form={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=tenant.basic(),
    )
    assert response.status_code == 200
    assert await _introspect(client, tenant, tokens["access_token"]) == {"active": False}
    assert await _introspect(client, tenant, tokens["refresh_token"]) == {"active": False}
    events = await superuser.fetchval(
        "SELECT count(*) FROM audit_events WHERE org_id = $1 AND event_type = 'oidc.grant_revoked'",
        tenant.org_id,
    )
    assert events == 1


async def test_revoking_unknown_token_is_200(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/revoke", form={"token": "unknown"}, headers=tenant.basic()
    )
    assert response.status_code == 200


async def test_revocation_needs_token(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/revoke", form={"token_type_hint": "x"}, headers=tenant.basic()
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "invalid_request"
