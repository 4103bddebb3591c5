"""HTTP routes of the PIM plane: issuer metadata, status lists, sign-in and the JSON API.

The JSON API under `/o/{org}/pim/api/` takes the session token of
`POST /o/{org}/pim/session` as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import re
from typing import Any, Final
from uuid import UUID

from quart import Blueprint, Response, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from appliance.db.queries.pim import (
    PIM_DECISIONS_FOR_REQUEST,
    PIM_IS_APPROVER,
    PIM_REQUEST_GET,
    PIM_REQUESTS_VISIBLE,
    PIM_ROLES_FOR_USER,
)
from appliance.db.tenancy import org_transaction
from appliance.errors import InvalidRequest, NotFound
from appliance.keys.signing import published_jwks
from appliance.pim import decisions
from appliance.pim.elevation import create_request
from appliance.pim.issuance import issue_credential
from appliance.pim.model import Policy, iso, request_json
from appliance.pim.service import CallContext, PimService
from appliance.pim.status_lists import TTL_SECONDS, current_token
from appliance.pim.validation import parse_comment, parse_elevation, parse_holder, parse_login
from appliance.web.http import client_address, json_body

ORG_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
STATUS_LIST_MEDIA_TYPE: Final = "application/statuslist+jwt"
MAX_LIST_LIMIT: Final = 200

blueprint = Blueprint("pim", __name__)


def service() -> PimService:
    svc: PimService = current_app.extensions["pim"]
    return svc


def checked_org(org: str) -> str:
    if not ORG_PATTERN.match(org):
        raise NotFound(f"org {org[:64]!r} not found")
    return org


def parse_id(value: str, what: str = "request") -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"{what} {value[:64]!r} not found") from None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def optional_json() -> Any:
    """Return the JSON body, or None when the request has none."""
    if not await request.get_data(as_text=False):
        return None
    return await json_body()


# Issuer metadata, keys and status lists: public, for relying parties.


@blueprint.get("/o/<org>/pim/jwks.json")
async def jwks(org: str) -> ResponseReturnValue:
    svc = service()
    org_id = await svc.org_id(checked_org(org))
    async with org_transaction(svc.pool, org_id) as conn:
        keys = await published_jwks(conn, org_id, "pim", now=svc.clock())
    return jsonify(keys), 200, {"Cache-Control": "public, max-age=60"}


@blueprint.get("/.well-known/jwt-vc-issuer/o/<org>/pim")
async def issuer_metadata(org: str) -> ResponseReturnValue:
    """SD-JWT VC issuer metadata: the issuer and where its keys are."""
    svc = service()
    await svc.org_id(checked_org(org))
    issuer = svc.issuer(org)
    return jsonify({"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"})


@blueprint.get("/o/<org>/pim/statuslists/<list_id>")
async def status_list(org: str, list_id: str) -> ResponseReturnValue:
    """Return the signed status list token (draft-ietf-oauth-status-list section 8)."""
    svc = service()
    org_id = await svc.org_id(checked_org(org))
    parsed = parse_id(list_id, "status list")
    async with org_transaction(svc.pool, org_id) as conn:
        token = await current_token(
            conn, org_id, parsed, issuer=svc.issuer(org), keys=svc.keys, now=svc.clock()
        )
    if token is None:
        raise NotFound(f"status list {list_id} not found")
    # Caches between us and a relying party revalidate every time, so a
    # revocation is visible to the next fetch. The token's `ttl` governs how
    # long a relying party itself may keep it.
    return Response(
        token,
        status=200,
        content_type=STATUS_LIST_MEDIA_TYPE,
        headers={"Cache-Control": f"no-cache, max-age=0, stale-if-error={TTL_SECONDS}"},
    )


# Sign-in.


@blueprint.post("/o/<org>/pim/session")
async def login(org: str) -> ResponseReturnValue:
    body = parse_login(await json_body())
    token, expires_at, username = await service().login(
        checked_org(org), body, source=client_address()
    )
    result = {
        "token": token,
        "token_type": "Bearer",
        "expires_at": iso(expires_at),
        "username": username,
    }
    return jsonify(result), 201, {"Cache-Control": "no-store"}


@blueprint.delete("/o/<org>/pim/session")
async def logout(org: str) -> ResponseReturnValue:
    token = bearer_token()
    if token:
        await service().logout(checked_org(org), token)
    return "", 204


# The JSON API.


@blueprint.get("/o/<org>/pim/api/roles")
async def roles(org: str) -> ResponseReturnValue:
    async def work(ctx: CallContext) -> list[dict[str, Any]]:
        rows = await ctx.conn.fetch(PIM_ROLES_FOR_USER, ctx.org_id, ctx.actor.user_id)
        return [
            {
                "name": row["name"],
                "description": row["description"],
                "eligible": row["eligible"],
                "approver": row["approver"],
                "policy": Policy.from_row(row).as_dict(),
            }
            for row in rows
            if row["eligible"] or row["approver"]
        ]

    return jsonify({"roles": await service().guarded(checked_org(org), bearer_token(), work)})


@blueprint.get("/o/<org>/pim/api/requests")
async def list_requests(org: str) -> ResponseReturnValue:
    pending = request.args.get("pending", "false").lower() in ("1", "true", "yes")
    raw_limit = request.args.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit={raw_limit[:16]!r} is invalid: use 1..{MAX_LIST_LIMIT}")

    async def work(ctx: CallContext) -> list[dict[str, Any]]:
        return await visible_requests(ctx, pending_only=pending, limit=int(raw_limit))

    return jsonify({"requests": await service().guarded(checked_org(org), bearer_token(), work)})


async def visible_requests(
    ctx: CallContext, *, pending_only: bool, limit: int
) -> list[dict[str, Any]]:
    """Requests the actor made or may decide, newest first, with the actor's view of each."""
    rows = await ctx.conn.fetch(
        PIM_REQUESTS_VISIBLE, ctx.org_id, ctx.actor.user_id, pending_only, ctx.now, limit
    )
    result = []
    for row in rows:
        item = request_json(row, ctx.now, approvals=row["approvals"])
        mine = row["requester_id"] == ctx.actor.user_id
        item["can_decide"] = (
            item["state"] == "pending"
            and row["viewer_is_approver"]
            and not mine
            and row["viewer_decision"] is None
        )
        item["your_decision"] = row["viewer_decision"]
        result.append(item)
    return result


@blueprint.post("/o/<org>/pim/api/requests")
async def new_request(org: str) -> ResponseReturnValue:
    body = parse_elevation(await json_body())
    svc = service()

    async def work(ctx: CallContext) -> dict[str, Any]:
        row = await create_request(
            ctx.conn, ctx.org_id, actor=ctx.actor, body=body, seal_key=svc.seal_key, now=ctx.now
        )
        return await request_detail(ctx, row["id"])

    return jsonify(await svc.guarded(checked_org(org), bearer_token(), work)), 201


async def request_detail(ctx: CallContext, request_id: UUID) -> dict[str, Any]:
    """Return a request with its decisions, if the actor made it or may decide it."""
    row = await ctx.conn.fetchrow(PIM_REQUEST_GET, ctx.org_id, request_id)
    visible = row is not None and (
        row["requester_id"] == ctx.actor.user_id
        or await ctx.conn.fetchval(PIM_IS_APPROVER, ctx.org_id, row["role_id"], ctx.actor.user_id)
    )
    if row is None or not visible:
        raise NotFound(f"request {request_id} not found, or not visible to you")
    decided = await ctx.conn.fetch(PIM_DECISIONS_FOR_REQUEST, ctx.org_id, request_id)
    body = request_json(
        row, ctx.now, approvals=sum(1 for d in decided if d["decision"] == "approve")
    )
    body["decisions"] = [
        {
            "approver": d["approver"],
            "decision": d["decision"],
            "comment": d["comment"],
            "decided_at": iso(d["decided_at"]),
        }
        for d in decided
    ]
    return body


@blueprint.get("/o/<org>/pim/api/requests/<request_id>")
async def get_request(org: str, request_id: str) -> ResponseReturnValue:
    parsed = parse_id(request_id)

    async def work(ctx: CallContext) -> dict[str, Any]:
        return await request_detail(ctx, parsed)

    return jsonify(await service().guarded(checked_org(org), bearer_token(), work))


async def _decision(org: str, request_id: str, *, approve: bool) -> ResponseReturnValue:
    parsed = parse_id(request_id)
    comment = parse_comment(await optional_json())

    async def work(ctx: CallContext) -> dict[str, Any]:
        await decisions.decide(
            ctx.conn,
            ctx.org_id,
            parsed,
            actor=ctx.actor,
            approve=approve,
            comment=comment,
            now=ctx.now,
        )
        return await request_detail(ctx, parsed)

    return jsonify(await service().guarded(checked_org(org), bearer_token(), work))


@blueprint.post("/o/<org>/pim/api/requests/<request_id>/approve")
async def approve(org: str, request_id: str) -> ResponseReturnValue:
    return await _decision(org, request_id, approve=True)


@blueprint.post("/o/<org>/pim/api/requests/<request_id>/deny")
async def deny(org: str, request_id: str) -> ResponseReturnValue:
    return await _decision(org, request_id, approve=False)


@blueprint.post("/o/<org>/pim/api/requests/<request_id>/cancel")
async def cancel(org: str, request_id: str) -> ResponseReturnValue:
    parsed = parse_id(request_id)

    async def work(ctx: CallContext) -> dict[str, Any]:
        await decisions.cancel(ctx.conn, ctx.org_id, parsed, actor=ctx.actor, now=ctx.now)
        return await request_detail(ctx, parsed)

    return jsonify(await service().guarded(checked_org(org), bearer_token(), work))


@blueprint.post("/o/<org>/pim/api/requests/<request_id>/revoke")
async def revoke(org: str, request_id: str) -> ResponseReturnValue:
    parsed = parse_id(request_id)
    comment = parse_comment(await optional_json())

    async def work(ctx: CallContext) -> dict[str, Any]:
        await decisions.revoke(
            ctx.conn, ctx.org_id, parsed, actor=ctx.actor, comment=comment, now=ctx.now
        )
        return await request_detail(ctx, parsed)

    return jsonify(await service().guarded(checked_org(org), bearer_token(), work))


@blueprint.post("/o/<org>/pim/api/requests/<request_id>/credential")
async def credential(org: str, request_id: str) -> ResponseReturnValue:
    parsed = parse_id(request_id)
    holder_jwk = parse_holder(await json_body())
    svc = service()

    async def work(ctx: CallContext) -> dict[str, Any]:
        issued = await issue_credential(
            ctx.conn,
            ctx.org_id,
            parsed,
            actor=ctx.actor,
            holder_jwk=holder_jwk,
            issuer=svc.issuer(ctx.org),
            keys=svc.keys,
            now=ctx.now,
        )
        return {
            "credential": issued.credential,
            "credential_id": issued.credential_id,
            "issuer": issued.issuer,
            "kid": issued.kid,
            "issued_at": issued.issued_at,
            "expires_at": issued.expires_at,
            "status": {
                "status_list": {"idx": issued.status_list_idx, "uri": issued.status_list_uri}
            },
        }

    return (
        jsonify(await svc.guarded(checked_org(org), bearer_token(), work)),
        201,
        {"Cache-Control": "no-store"},
    )
