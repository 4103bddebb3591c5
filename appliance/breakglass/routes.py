"""HTTP routes of the break-glass plane."""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from appliance.breakglass.activation import BreakglassService
from appliance.breakglass.request import parse_activation_request
from appliance.db.tenancy import org_transaction
from appliance.errors import NotFound
from appliance.keys.signing import published_jwks
from appliance.web.http import json_body

ORG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

blueprint = Blueprint("breakglass", __name__)


def service() -> BreakglassService:
    svc: BreakglassService = current_app.extensions["breakglass"]
    return svc


def checked_org(org: str) -> str:
    if not ORG_PATTERN.match(org):
        raise NotFound(f"org {org[:64]!r} not found")
    return org


@blueprint.post("/o/<org>/breakglass/activate")
async def activate(org: str) -> ResponseReturnValue:
    body = await json_body()
    activation_request = parse_activation_request(body)
    source = request.remote_addr or "unknown"
    activation = await service().activate(checked_org(org), activation_request, source=source)
    response: dict[str, Any] = {
        "credential": activation.credential,
        "issuer": activation.issuer,
        "kid": activation.kid,
        "credential_id": activation.credential_id,
        "issued_at": activation.issued_at,
        "expires_at": activation.expires_at,
        "ttl_seconds": activation.ttl_seconds,
        "ttl_capped": activation.ttl_capped,
    }
    return jsonify(response), 201, {"Cache-Control": "no-store"}


@blueprint.get("/o/<org>/breakglass/jwks.json")
async def jwks(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(checked_org(org))
    async with org_transaction(svc.pool, org_id) as conn:
        keys = await published_jwks(conn, org_id, "breakglass", now=svc.clock())
    return jsonify(keys), 200, {"Cache-Control": "public, max-age=60"}


@blueprint.get("/.well-known/jwt-vc-issuer/o/<org>/breakglass")
async def issuer_metadata(org: str) -> ResponseReturnValue:
    """SD-JWT VC issuer metadata: the issuer and where its keys are."""
    svc = service()
    await svc.org_id(checked_org(org))
    issuer = svc.issuer(org)
    return jsonify({"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"})
