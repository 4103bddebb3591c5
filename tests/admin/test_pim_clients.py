"""PIM roles and policies, and OAuth clients, through the admin API."""

from __future__ import annotations

import asyncpg
from quart.typing import TestClientProtocol as Client

from appliance.db.tenancy import set_org
from appliance.oidc.client_secrets import client_secret_matches
from tests.admin.conftest import Tenant, call


async def test_pim_policy_manager_builds_a_role(client: Client, tenant: Tenant) -> None:
    manager = tenant.users["policy"]
    admin = tenant.users["admin"]
    await call(client, "POST", f"/admin/v1/orgs/{tenant.org}/groups", admin, json={"name": "dba"})
    base = f"/admin/v1/orgs/{tenant.org}/pim/roles"
    status, body = await call(
        client,
        "POST",
        base,
        manager,
        json={
            "name": "prod-db-admin",
            "approvals_required": 2,
            "max_duration_seconds": 3600,
            "ticket_required": True,
            "ticket_pattern": "^INC-[0-9]+$",
        },
    )
    assert status == 201, body
    policy = body["role"]["policy"]
    assert (policy["approvals_required"], policy["ticket_pattern"]) == (2, "^INC-[0-9]+$")
    assert policy["pending_ttl_seconds"] == 3600
    status, body = await call(client, "PUT", f"{base}/prod-db-admin/eligible/users/nobody", manager)
    assert status == 200
    status, body = await call(client, "PUT", f"{base}/prod-db-admin/approvers/groups/dba", manager)
    assert body["role"]["eligible"]["users"] == ["nobody"]
    assert body["role"]["approvers"]["groups"] == ["dba"]
    status, body = await call(
        client,
        "PATCH",
        f"{base}/prod-db-admin",
        manager,
        json={"approvals_required": 1, "ticket_pattern": None},
    )
    assert status == 200
    assert body["role"]["policy"]["approvals_required"] == 1
    assert body["role"]["policy"]["ticket_pattern"] is None
    assert body["role"]["policy"]["max_duration_seconds"] == 3600
    status, body = await call(
        client, "DELETE", f"{base}/prod-db-admin/eligible/users/nobody", manager
    )
    assert body["role"]["eligible"]["users"] == []
    status, body = await call(
        client, "DELETE", f"{base}/prod-db-admin/eligible/users/nobody", manager
    )
    assert status == 404


async def test_pim_policy_input_is_checked(client: Client, tenant: Tenant) -> None:
    manager = tenant.users["policy"]
    base = f"/admin/v1/orgs/{tenant.org}/pim/roles"
    for body in (
        {"name": "r1", "approvals_required": 11},
        {"name": "r1", "max_duration_seconds": 30},
        {"name": "r1", "ticket_pattern": "(unclosed"},
        {"name": "r1", "totp_step_up": "yes"},
        {"name": "R1"},
    ):
        status, _reply = await call(client, "POST", base, manager, json=body)
        assert status == 400, body
    assert (await call(client, "POST", base, manager, json={"name": "r1"}))[0] == 201
    assert (await call(client, "POST", base, manager, json={"name": "r1"}))[0] == 409
    assert (await call(client, "DELETE", f"{base}/r1", manager))[0] == 204


async def test_client_secret_shown_once_and_rotated(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    base = f"/admin/v1/orgs/{tenant.org}/clients"
    status, body = await call(
        client,
        "POST",
        base,
        admin,
        json={
            "client_id": "billing",
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://billing.example.com/callback"],
            "scopes": ["openid"],
        },
    )
    assert status == 201, body
    first = body["client_secret"]
    status, shown = await call(client, "GET", f"{base}/billing", tenant.users["auditor"])
    assert "client_secret" not in shown
    status, rotated = await call(client, "POST", f"{base}/billing/rotate-secret", admin)
    assert status == 200
    second = rotated["client_secret"]
    assert second != first
    async with superuser.transaction():
        await set_org(superuser, tenant.org_id)
        row = await superuser.fetchrow(
            "SELECT secret_salt, secret_hash FROM oauth_clients WHERE org_id = $1 AND "
            "client_id = 'billing'",
            tenant.org_id,
        )
    assert client_secret_matches(second, salt=row["secret_salt"], stored_hash=row["secret_hash"])
    assert not client_secret_matches(first, salt=row["secret_salt"], stored_hash=row["secret_hash"])
    status, body = await call(
        client,
        "PATCH",
        f"{base}/billing",
        admin,
        json={
            "redirect_uris": ["https://billing.example.com/cb2"],
            "disabled": True,
        },
    )
    assert status == 200
    assert body["client"]["redirect_uris"] == ["https://billing.example.com/cb2"]
    assert body["client"]["disabled"] is True


async def test_client_rules_of_the_auth_plane_apply(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    base = f"/admin/v1/orgs/{tenant.org}/clients"
    bad = [
        {
            "client_id": "x",
            "token_endpoint_auth_method": "none",
            "grant_types": ["client_credentials"],
        },
        {
            "client_id": "x",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
        },
        {
            "client_id": "x",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://example.com/cb"],
        },
        {
            "client_id": "x",
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
            "jwks": {},
        },
        {
            "client_id": "x",
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["client_credentials"],
            "jwks": {"keys": []},
        },
    ]
    for body in bad:
        status, reply = await call(client, "POST", base, admin, json=body)
        assert status == 400, (body, reply)
    status, body = await call(
        client,
        "POST",
        base,
        admin,
        json={
            "client_id": "cli",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1/callback"],
        },
    )
    assert status == 201
    assert "client_secret" not in body
    status, body = await call(client, "POST", f"{base}/cli/rotate-secret", admin)
    assert status == 409
    assert (await call(client, "DELETE", f"{base}/cli", admin))[0] == 204
    assert (await call(client, "GET", f"{base}/cli", admin))[0] == 404
