"""JSON routes of the auth plane: discovery, JWKS, token, introspection, revocation, userinfo."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify
from quart.typing import ResponseReturnValue

from appliance.oidc.client_auth import authenticate_client
from appliance.oidc.grants import token_request
from appliance.oidc.issuer_keys import JWKS_MAX_AGE_SECONDS, jwks_json
from appliance.oidc.pages import service
from appliance.oidc.params import form_params
from appliance.oidc.rfc7009 import revoke
from appliance.oidc.rfc7662 import introspect
from appliance.oidc.rfc8414 import metadata
from appliance.oidc.userinfo import userinfo

blueprint = Blueprint("oidc", __name__)

# Relying parties cache discovery and keys; rotation publishes a next key
# long before it signs, so five minutes of caching cannot miss one.
METADATA_CACHE = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
# RFC 6749 section 5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _discovery(org: str) -> ResponseReturnValue:
    svc = service()
    await svc.org_id(org)
    return jsonify(metadata(svc.issuer(org))), 200, {"Cache-Control": METADATA_CACHE}


@blueprint.get("/o/<org>/.well-known/openid-configuration")
async def openid_configuration(org: str) -> ResponseReturnValue:
    return await _discovery(org)


@blueprint.get("/.well-known/openid-configuration/o/<org>")
async def openid_configuration_inserted(org: str) -> ResponseReturnValue:
    return await _discovery(org)


@blueprint.get("/.well-known/oauth-authorization-server/o/<org>")
async def authorization_server_metadata(org: str) -> ResponseReturnValue:
    return await _discovery(org)


@blueprint.get("/o/<org>/jwks.json")
async def jwks(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(org)
    # The first request of a new org creates its key, so the set is never empty.
    await svc.keys.signer(org_id)
    document = await svc.keys.jwks(org_id)
    return Response(
        jwks_json(document),
        content_type="application/jwk-set+json",
        headers={"Cache-Control": METADATA_CACHE},
    )


@blueprint.post("/o/<org>/token")
async def token(org: str) -> ResponseReturnValue:
    params = await form_params()
    body = await token_request(service(), org, params)
    return jsonify(body), 200, NO_STORE


@blueprint.post("/o/<org>/introspect")
async def introspection(org: str) -> ResponseReturnValue:
    svc = service()
    params = await form_params()
    org_id = await svc.org_id(org)
    client = await authenticate_client(
        svc, org_id, org, params, endpoint=f"{svc.issuer(org)}/introspect", allow_public=False
    )
    return jsonify(await introspect(svc, org_id, org, client, params)), 200, NO_STORE


@blueprint.post("/o/<org>/revoke")
async def revocation(org: str) -> ResponseReturnValue:
    svc = service()
    params = await form_params()
    org_id = await svc.org_id(org)
    client = await authenticate_client(
        svc, org_id, org, params, endpoint=f"{svc.issuer(org)}/revoke"
    )
    await revoke(svc, org_id, org, client, params)
    return Response("", status=200, headers=NO_STORE)


@blueprint.route("/o/<org>/userinfo", methods=["GET", "POST"])
async def user_info(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(org)
    return jsonify(await userinfo(svc, org_id, org)), 200, NO_STORE
