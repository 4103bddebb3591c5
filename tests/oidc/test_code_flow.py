"""The authorization code flow with PKCE, end to end through the endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from jwcrypto import jwk, jwt
from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import (
    API,
    Tenant,
    authorization_code,
    exchange,
    tokens_for_user,
)


async def _jwks(client: Client, tenant: Tenant) -> jwk.JWKSet:
    response = await client.get(f"/o/{tenant.org}/jwks.json")
    assert response.status_code == 200
    return jwk.JWKSet.from_json(await response.get_data(as_text=True))


def _claims(token: str, keys: jwk.JWKSet) -> tuple[dict[str, Any], dict[str, Any]]:
    parsed = jwt.JWT(jwt=token, key=keys, algs=["ES256"])
    import json

    return json.loads(parsed.header), json.loads(parsed.claims)


async def test_code_flow_issues_tokens(client: Client, tenant: Tenant) -> None:
    code, verifier, query = await authorization_code(client, tenant)
    response = await exchange(client, tenant, code, verifier)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = await response.get_json()
    assert body["token_type"] == "Bearer"
    assert set(body) >= {"access_token", "id_token", "refresh_token", "expires_in", "scope"}
    keys = await _jwks(client, tenant)
    header, access = _claims(body["access_token"], keys)
    assert header["typ"] == "at+jwt"
    assert access["iss"] == tenant.issuer
    assert access["sub"] == str(tenant.user_id)
    assert access["client_id"] == tenant.confidential_id
    assert access["aud"] == tenant.issuer
    _, id_claims = _claims(body["id_token"], keys)
    assert id_claims["aud"] == tenant.confidential_id
    assert id_claims["nonce"] == query["nonce"]
    assert id_claims["preferred_username"] == "alice"
    assert id_claims["email"] == "alice@example.com"


async def test_authorization_response_carries_iss(client: Client, tenant: Tenant) -> None:
    from tests.oidc.conftest import authorize_query, location_params, login, pkce

    _, challenge = pkce()
    response = await login(client, tenant, authorize_query(tenant, challenge))
    assert location_params(response.headers["Location"])["iss"] == tenant.issuer


async def test_resource_indicator_sets_audience(client: Client, tenant: Tenant) -> None:
    body = await tokens_for_user(client, tenant, scope="api.read", resource=API)
    _, access = _claims(body["access_token"], await _jwks(client, tenant))
    assert access["aud"] == API
    assert "id_token" not in body


async def test_public_client_on_loopback_any_port(client: Client, tenant: Tenant) -> None:
    redirect = "http://127.0.0.1:53177/callback"
    code, verifier, _ = await authorization_code(
        client, tenant, client_id=tenant.public_id, redirect_uri=redirect
    )
    response = await exchange(
        client,
        tenant,
        code,
        verifier,
        redirect_uri=redirect,
        headers={},
        client_id=tenant.public_id,
    )
    assert response.status_code == 200, await response.get_data(as_text=True)


async def test_session_skips_login_second_time(client: Client, tenant: Tenant) -> None:
    from tests.oidc.conftest import authorize_query, location_params, pkce, source

    await tokens_for_user(client, tenant)
    _, challenge = pkce()
    query = authorize_query(tenant, challenge)
    from urllib.parse import urlencode

    response = await client.get(
        f"/o/{tenant.org}/authorize?{urlencode(query)}", scope_base=source()
    )
    assert response.status_code == 302
    assert "code" in location_params(response.headers["Location"])


async def test_code_replay_revokes_tokens(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    first = await (await exchange(client, tenant, code, verifier)).get_json()
    second = await exchange(client, tenant, code, verifier)
    assert second.status_code == 400
    assert (await second.get_json())["error"] == "invalid_grant"
    refresh = await client.post(
        f"/o/{tenant.org}/token",
        form={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=tenant.basic(),
    )
    assert (await refresh.get_json())["error"] == "invalid_grant"
    introspection = await client.post(
        f"/o/{tenant.org}/introspect", form={"token": first["access_token"]}, headers=tenant.basic()
    )
    assert await introspection.get_json() == {"active": False}


async def test_concurrent_code_exchange_one_wins(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    responses = await asyncio.gather(*(exchange(client, tenant, code, verifier) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400, 400, 400, 400]
    winner = next(r for r in responses if r.status_code == 200)
    token = (await winner.get_json())["access_token"]
    introspection = await client.post(
        f"/o/{tenant.org}/introspect", form={"token": token}, headers=tenant.basic()
    )
    assert await introspection.get_json() == {"active": False}
