"""Refresh tokens: rotation on every use, and reuse of a rotated token revokes the family."""

from __future__ import annotations

from typing import Any

from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import Tenant, tokens_for_user


async def _refresh(client: Client, tenant: Tenant, token: str, **extra: str) -> Any:
    return await client.post(
        f"/o/{tenant.org}/token",
        form={"grant_type": "refresh_token", "refresh_token": token, **extra},
        headers=tenant.basic(),
    )


async def _active(client: Client, tenant: Tenant, token: str) -> bool:
    response = await client.post(
        f"/o/{tenant.org}/introspect", form={"token": token}, headers=tenant.basic()
    )
    return bool((await response.get_json())["active"])


async def test_refresh_rotates_token(client: Client, tenant: Tenant) -> None:
    first = await tokens_for_user(client, tenant)
    response = await _refresh(client, tenant, first["refresh_token"])
    assert response.status_code == 200
    second = await response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert "id_token" in second
    assert not await _active(client, tenant, first["refresh_token"])
    assert await _active(client, tenant, second["refresh_token"])


async def test_reused_refresh_token_revokes_family(client: Client, tenant: Tenant) -> None:
    first = await tokens_for_user(client, tenant)
    second = await (await _refresh(client, tenant, first["refresh_token"])).get_json()
    reuse = await _refresh(client, tenant, first["refresh_token"])
    assert reuse.status_code == 400
    assert (await reuse.get_json())["error"] == "invalid_grant"
    after = await _refresh(client, tenant, second["refresh_token"])
    assert (await after.get_json())["error"] == "invalid_grant"
    assert not await _active(client, tenant, second["access_token"])
    assert not await _active(client, tenant, first["access_token"])


async def test_refresh_may_narrow_scope(client: Client, tenant: Tenant) -> None:
    first = await tokens_for_user(client, tenant)
    response = await _refresh(client, tenant, first["refresh_token"], scope="openid")
    assert (await response.get_json())["scope"] == "openid"


async def test_refresh_cannot_widen_scope(client: Client, tenant: Tenant) -> None:
    first = await tokens_for_user(client, tenant)
    response = await _refresh(client, tenant, first["refresh_token"], scope="openid api.write")
    assert (await response.get_json())["error"] == "invalid_scope"


async def test_expired_refresh_token_is_invalid_grant(client: Client, tenant: Tenant) -> None:
    first = await tokens_for_user(client, tenant)
    tenant.clock.advance(86400 + 1)
    response = await _refresh(client, tenant, first["refresh_token"])
    assert (await response.get_json())["error"] == "invalid_grant"


async def test_refresh_token_of_other_client_is_invalid_grant(
    client: Client, tenant: Tenant
) -> None:
    first = await tokens_for_user(client, tenant)
    response = await client.post(
        f"/o/{tenant.org}/token",
        form={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": tenant.public_id,
        },
    )
    assert (await response.get_json())["error"] == "invalid_grant"
