"""The OpenAPI document and the routes agree, and the document is served."""

from __future__ import annotations

from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.admin.openapi_operations import OPERATIONS
from appliance.admin.rbac import Permission
from appliance.admin.routes import openapi_path


def test_every_route_is_documented_and_every_operation_routed(app: Quart) -> None:
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin_api."):
            for method in rule.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    routed.add((method.lower(), openapi_path(rule.rule)))
    documented = {(method, path) for method, path, _ in OPERATIONS}
    assert routed == documented


def test_every_permission_named_in_the_document_exists() -> None:
    names = {p.value for p in Permission}
    for _, path, spec in OPERATIONS:
        permission = spec.get("x-permission")
        assert permission is None or permission in names, path
        assert permission is not None or spec["operationId"] in {"login", "logout", "me", "getOrg"}


async def test_document_is_served_as_openapi_3_1(client: Client) -> None:
    response = await client.get("/admin/openapi.json")
    assert response.status_code == 200
    document = await response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document["paths"]["/admin/v1/orgs/{org}/login"]["post"]["security"] == []
    assert len({op["operationId"] for p in document["paths"].values() for op in p.values()}) == len(
        OPERATIONS
    )
