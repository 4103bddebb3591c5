"""HTTP routes of the break-glass plane."""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint, current_app, jsonify
from quart.typing import ResponseReturnValue

from appliance.breakglass.request import parse_activation_request
from appliance.breakglass.service import BreakglassService
from appliance.errors import NotFound
from appliance.web.http import client_address, json_body

ORG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

blueprint = Blueprint("breakglass", __name__)


def service() -> BreakglassService:
    svc: BreakglassService = current_app.extensions["breakglass"]
    return svc


def checked_org(org: str) -> str:
    if not ORG_PATTERN.fullmatch(org):
        raise NotFound(f"org {org[:64]!r} not found")
    return org


@blueprint.post("/o/<org>/breakglass/activate")
async def activate(org: str) -> ResponseReturnValue:
    body = await json_body()
    activation_request = parse_activation_request(body)
    source = client_address()
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
        "degraded": activation.degraded,
    }
    return jsonify(response), 201, {"Cache-Control": "no-store"}


@blueprint.get("/o/<org>/breakglass/jwks.json")
async def jwks(org: str) -> ResponseReturnValue:
    keys = await service().jwks(checked_org(org))
    return jsonify(keys), 200, {"Cache-Control": "public, max-age=60"}


@blueprint.get("/.well-known/jwt-vc-issuer/o/<org>/breakglass")
async def issuer_metadata(org: str) -> ResponseReturnValue:
    """SD-JWT VC issuer metadata: the issuer and where its keys are."""
    svc = service()
    await svc.check_org(checked_org(org))
    issuer = svc.issuer(org)
    return jsonify({"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"})
