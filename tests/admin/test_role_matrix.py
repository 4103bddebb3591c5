"""For each admin role, which calls it may make (not 401/403) and which it may not (403)."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client

from appliance.admin.rbac import ROLE_PERMISSIONS
from tests.admin.conftest import Tenant, call
from tests.admin.requests import requests_for

# Operations that end the caller's session or need none; covered in test_session.py.
NOT_IN_MATRIX = {"login", "logout"}


async def test_role_matrix(client: Client, tenant: Tenant) -> None:
    outcomes: dict[tuple[str, str], int] = {}
    for username in ("admin", "auditor", "policy", "nobody"):
        user = tenant.users[username]
        granted: set[str] = set()
        for role in user.roles:
            granted |= {p.value for p in ROLE_PERMISSIONS[role]}
        for request in requests_for(tenant.org):
            if request.operation_id in NOT_IN_MATRIX:
                continue
            status, body = await call(client, request.method, request.path, user, json=request.body)
            outcomes[(username, request.operation_id)] = status
            if not request.tenant_scoped:
                # Org management lives in org `system`: a tenant caller sees nothing there.
                assert status == 404, (username, request.operation_id, body)
            elif request.permission is None or request.permission in granted:
                assert status not in (401, 403, 500), (username, request.operation_id, body)
            else:
                assert status == 403, (username, request.operation_id, body)
                assert body["error"] == "forbidden"
                assert request.permission in body["error_description"]

    # Spot checks that state the matrix in words.
    assert outcomes[("auditor", "searchAudit")] == 200
    assert outcomes[("auditor", "listKeys")] == 200
    assert outcomes[("auditor", "createUser")] == 403
    assert outcomes[("auditor", "requestRotation")] == 403
    assert outcomes[("policy", "createPimRole")] in (201, 409)
    assert outcomes[("policy", "listUsers")] == 200
    assert outcomes[("policy", "listBreakglassAccounts")] == 403
    assert outcomes[("policy", "searchAudit")] == 403
    assert outcomes[("policy", "registerClient")] == 403
    assert outcomes[("admin", "createUser")] == 201
    assert outcomes[("admin", "createBreakglassAccount")] == 201
    assert outcomes[("admin", "requestRotation")] == 202
    assert outcomes[("auditor", "listBreakglassAlertTargets")] == 200
    assert outcomes[("auditor", "createBreakglassAlertTarget")] == 403
    assert outcomes[("policy", "listBreakglassAlertTargets")] == 403
    assert outcomes[("admin", "createBreakglassAlertTarget")] == 201
    assert outcomes[("nobody", "me")] == 200
    assert outcomes[("nobody", "listUsers")] == 403


async def test_platform_admin_manages_orgs_only_from_system(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, body = await call(client, "GET", "/admin/v1/orgs", admin)
    assert status == 404
    assert body["error"] == "not_found"
