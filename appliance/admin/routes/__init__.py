"""The admin JSON API under `/admin/v1`: one blueprint, one module per resource."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from quart import Blueprint, Response, jsonify, request

from appliance.errors import InvalidRequest

PREFIX = "/admin/v1"
ORG_PREFIX = f"{PREFIX}/orgs/<org>"
# Upper bound of any list the API returns in one response.
MAX_LIST = 1000
RULE_VARIABLE = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>")

api = Blueprint("admin_api", __name__)


def reply(payload: Any, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def no_content() -> Response:
    return Response(b"", status=204)


def openapi_path(rule: str) -> str:
    """Convert a URL rule to its OpenAPI path (`<any(a, b):kind>` becomes `{kind}`)."""
    return RULE_VARIABLE.sub(r"{\1}", rule)


@cache
def documented_query(path: str, method: str) -> frozenset[str]:
    from appliance.admin.openapi_operations import OPERATIONS

    for op_method, op_path, spec in OPERATIONS:
        if op_path == path and op_method == method:
            return frozenset(p["name"] for p in spec["parameters"] if p["in"] == "query")
    return frozenset()


@api.before_request
async def reject_unknown_query_parameters() -> None:
    """Reject query parameters the operation does not define, as bodies reject unknown fields."""
    rule = request.url_rule
    if rule is None:
        return
    allowed = documented_query(openapi_path(rule.rule), request.method.lower())
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter {unknown[0][:64]!r}; this operation accepts "
            f"{', '.join(sorted(allowed)) or 'none'}"
        )


def load_routes() -> Blueprint:
    """Import every resource module, so their routes attach to `api`, and return it."""
    from appliance.admin.routes import (  # noqa: F401
        audit,
        breakglass,
        breakglass_alerts,
        clients,
        groups,
        keys,
        orgs,
        pim,
        rbac,
        session,
        users,
    )

    return api
