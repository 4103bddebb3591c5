"""A concrete, valid request for every documented admin operation, for table-driven tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.admin.openapi_operations import OPERATIONS

# Path values: resources that do not exist, so an allowed caller gets 404 or a
# fresh resource and a denied caller 403, and nothing existing is changed.
PATH_VALUES = {
    "username": "no-such-user",
    "name": "no-such-thing",
    "kid": "no-such-kid",
    "role": "security-auditor",
    "relation": "eligible",
    "kind": "users",
    "principal": "no-such-user",
    "client_id": "no-such-client",
    "target_id": "00000000-0000-4000-8000-000000000000",
}

BODIES: dict[str, Any] = {
    "login": {"username": "nobody", "password": "wrong password", "totp": "000000"},
    "createOrg": {"name": "matrix-org-x", "admin_username": "first"},
    "createUser": {"username": "matrix-user"},
    "updateUser": {"display_name": "Someone"},
    "resetPassword": {},
    "createGroup": {"name": "matrix-group"},
    "createBreakglassAccount": {
        "name": "matrix-account",
        "role": "breakglass-admin",
        "passphrase": "a long enough passphrase",
        "custodians": ["one"],
    },
    "updateBreakglassAccount": {"max_ttl_seconds": 1800},
    "setBreakglassPassphrase": {"passphrase": "another long passphrase"},
    "enrollCustodian": {"name": "two"},
    "createBreakglassAlertTarget": {"url": "https://hooks.example.test/breakglass"},
    "updateBreakglassAlertTarget": {"enabled": False},
    "createPimRole": {"name": "matrix-role", "approvals_required": 1},
    "updatePimRole": {"approvals_required": 2},
    "registerClient": {
        "client_id": "matrix-client",
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"],
    },
    "updateClient": {"client_name": "Matrix"},
    "retireKey": {},
    "requestRotation": {"plane": "pim", "reason": "matrix"},
}


@dataclass(frozen=True)
class Request:
    operation_id: str
    method: str
    path: str
    permission: str | None
    body: Any
    tenant_scoped: bool


def requests_for(org: str) -> list[Request]:
    built = []
    for method, template, spec in OPERATIONS:
        path = template.replace("{org}", org)
        for name, value in PATH_VALUES.items():
            path = path.replace(f"{{{name}}}", value)
        operation_id = spec["operationId"]
        built.append(
            Request(
                operation_id=operation_id,
                method=method.upper(),
                path=path,
                permission=spec.get("x-permission"),
                body=BODIES.get(operation_id) if "requestBody" in spec else None,
                tenant_scoped="{org}" in template,
            )
        )
    return built
