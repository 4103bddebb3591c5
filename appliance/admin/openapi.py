"""The admin API's OpenAPI 3.1 document, served at `/admin/openapi.json`."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify
from quart.typing import ResponseReturnValue

from appliance import __version__
from appliance.admin.openapi_operations import OPERATIONS
from appliance.admin.openapi_schemas import BODIES, SCHEMAS

blueprint = Blueprint("admin_openapi", __name__)


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, operation in OPERATIONS:
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "appliance admin API",
            "version": __version__,
            "description": (
                "Orgs, users, groups, role bindings, break-glass accounts, keys and audit. "
                "Log in with POST /admin/v1/orgs/{org}/login and send the token as "
                "Authorization: Bearer <token>."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**SCHEMAS, **BODIES},
        },
    }


@blueprint.get("/admin/openapi.json")
async def openapi_json() -> ResponseReturnValue:
    return jsonify(document())
