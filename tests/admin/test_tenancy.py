"""A caller from another org gets 404 on every call, never data."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client

from tests.admin.conftest import Tenant, call
from tests.admin.requests import requests_for


async def test_other_org_gets_404_everywhere(
    client: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    intruder = other_tenant.users["admin"]
    for request in requests_for(tenant.org):
        if not request.tenant_scoped or request.operation_id == "login":
            continue
        status, body = await call(client, request.method, request.path, intruder, json=request.body)
        assert status == 404, (request.operation_id, status, body)
        assert set(body) == {"error", "error_description"}
        assert body["error"] == "not_found"


async def test_other_org_cannot_tell_existing_from_missing_org(
    client: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    intruder = other_tenant.users["admin"]
    existing = await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/users", intruder)
    missing = await call(client, "GET", "/admin/v1/orgs/no-such-org-here/users", intruder)
    assert existing[0] == missing[0] == 404
    assert existing[1]["error"] == missing[1]["error"] == "not_found"


async def test_rows_of_other_org_stay_invisible(
    client: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin = other_tenant.users["admin"]
    status, body = await call(client, "GET", f"/admin/v1/orgs/{other_tenant.org}/users", admin)
    assert status == 200
    names = {u["username"] for u in body["users"]}
    assert names == {"admin", "auditor", "policy", "nobody"}
    status, body = await call(
        client, "GET", f"/admin/v1/orgs/{other_tenant.org}/audit/events?limit=500", admin
    )
    assert status == 200
    assert {e["org_id"] for e in body["events"]} == {str(other_tenant.org_id)}
