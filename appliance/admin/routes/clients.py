"""OAuth clients of the auth plane: register, change, rotate the secret, delete.

Registration goes through `appliance.oidc.clients.create_client`, which
owns the rules of the auth plane (grant types, redirect URIs per RFC 8252,
scopes, JWKS). A client secret is shown once, at registration or rotation,
and stored only as a salted HMAC-SHA256. The auth plane caches clients for a
few seconds, so a change reaches every replica within that time.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from quart import request
from quart.typing import ResponseReturnValue

from appliance.admin.changes import record_change
from appliance.admin.errors import Conflict
from appliance.admin.fields import Body, query_int
from appliance.admin.rbac import Permission
from appliance.admin.routes import MAX_LIST, ORG_PREFIX, api, no_content, reply
from appliance.admin.service import Call, admin_call
from appliance.admin.users import iso
from appliance.db.queries.admin import (
    ADMIN_CLIENT_DELETE,
    ADMIN_CLIENT_LOCK,
    ADMIN_CLIENT_SET_SECRET,
    ADMIN_CLIENT_UPDATE,
    ADMIN_CLIENTS_LIST,
)
from appliance.errors import InvalidRequest, NotFound
from appliance.oidc.client_secrets import hash_new_client_secret, new_client_secret
from appliance.oidc.clients import (
    AUTH_METHODS,
    CLIENT_ID_PATTERN,
    GRANT_TYPES,
    SCOPE_TOKEN,
    create_client,
)
from appliance.oidc.rfc8252 import check_registered_redirect_uri
from appliance.web.http import json_body

CLIENTS = f"{ORG_PREFIX}/clients"
CLIENT = f"{CLIENTS}/<client_id>"
MAX_URIS = 20
MAX_URI_CHARS = 2048
MAX_SCOPES = 50
LIST_FIELDS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes", "resources")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def client_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "client_id": row["client_id"],
        "client_name": row["client_name"],
        "client_type": row["client_type"],
        "token_endpoint_auth_method": row["token_endpoint_auth_method"],
        "has_jwks": row["has_jwks"],
        **{name: list(row[name]) for name in LIST_FIELDS},
        "access_token_ttl_seconds": row["access_token_ttl_seconds"],
        "refresh_token_ttl_seconds": row["refresh_token_ttl_seconds"],
        "disabled": row["disabled"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def audited(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("created_at", "updated_at")}


def read_lists(body: Body) -> dict[str, list[str] | None]:
    return {
        "redirect_uris": body.string_list(
            "redirect_uris", max_items=MAX_URIS, max_chars=MAX_URI_CHARS
        ),
        "post_logout_redirect_uris": body.string_list(
            "post_logout_redirect_uris", max_items=MAX_URIS, max_chars=MAX_URI_CHARS
        ),
        "grant_types": body.string_list("grant_types", max_items=3, max_chars=32),
        "scopes": body.string_list(
            "scopes", max_items=MAX_SCOPES, max_chars=128, pattern=SCOPE_TOKEN
        ),
        "resources": body.string_list("resources", max_items=MAX_URIS, max_chars=MAX_URI_CHARS),
    }


def check_lists(auth_method: str, lists: dict[str, list[str]]) -> None:
    unknown = sorted(set(lists["grant_types"]) - GRANT_TYPES)
    if unknown or not lists["grant_types"]:
        raise InvalidRequest(
            f"grant_types {unknown or '[]'} is not supported: "
            f"use one or more of {sorted(GRANT_TYPES)}"
        )
    if auth_method == "none" and "client_credentials" in lists["grant_types"]:
        raise InvalidRequest("a public client cannot use client_credentials: it has no credentials")
    if "authorization_code" in lists["grant_types"] and not lists["redirect_uris"]:
        raise InvalidRequest("grant type authorization_code needs at least one redirect URI")
    for uri in [*lists["redirect_uris"], *lists["post_logout_redirect_uris"]]:
        try:
            check_registered_redirect_uri(uri)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
    for uri in lists["resources"]:
        if not uri.startswith("https://"):
            raise InvalidRequest(
                f"resource {uri[:64]!r} must be an absolute https:// URI (RFC 8707)"
            )


async def locked_client(call: Call, client_id: str) -> asyncpg.Record:
    row: asyncpg.Record | None = None
    if CLIENT_ID_PATTERN.fullmatch(client_id):
        row = await call.conn.fetchrow(ADMIN_CLIENT_LOCK, call.org_id, client_id)
    if row is None:
        raise NotFound(f"client {client_id[:128]!r} not found in org {call.caller.org_name!r}")
    return row


@api.get(CLIENTS)
async def list_clients(org: str) -> ResponseReturnValue:
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_LIST)
    async with admin_call(org, Permission.CLIENTS_READ) as call:
        rows = await call.conn.fetch(ADMIN_CLIENTS_LIST, call.org_id, limit)
    return reply({"clients": [client_view(r) for r in rows]})


@api.post(CLIENTS)
async def register_client(org: str) -> ResponseReturnValue:
    body = Body(
        await json_body(),
        allowed={
            "client_id",
            "client_name",
            "token_endpoint_auth_method",
            "jwks",
            "access_token_ttl_seconds",
            "refresh_token_ttl_seconds",
            *LIST_FIELDS,
        },
    )
    client_id = body.required_string("client_id", max_chars=128, pattern=CLIENT_ID_PATTERN)
    client_name = body.string("client_name", max_chars=200, min_chars=0, required=False) or ""
    auth_method = body.required_string("token_endpoint_auth_method", max_chars=32)
    if auth_method not in AUTH_METHODS:
        raise InvalidRequest(
            f"token_endpoint_auth_method {auth_method!r} is not one of {sorted(AUTH_METHODS)}"
        )
    lists = {name: value or [] for name, value in read_lists(body).items()}
    check_lists(auth_method, lists)
    jwks = body.mapping("jwks")
    if (jwks is not None) != (auth_method == "private_key_jwt"):
        raise InvalidRequest(
            "jwks is required with token_endpoint_auth_method private_key_jwt and not allowed "
            "with any other method"
        )
    access_ttl = body.integer("access_token_ttl_seconds", low=60, high=3600) or 600
    refresh_ttl = body.integer("refresh_token_ttl_seconds", low=300, high=2_592_000) or 86400
    async with admin_call(org, Permission.CLIENTS_WRITE) as call:
        if await call.conn.fetchrow(ADMIN_CLIENT_LOCK, call.org_id, client_id) is not None:
            raise Conflict(f"client {client_id!r} already exists")
        try:
            registered = await create_client(
                call.conn,
                call.org_id,
                client_id=client_id,
                auth_method=auth_method,
                grant_types=lists["grant_types"],
                actor=call.actor,
                now=call.now,
                client_name=client_name,
                redirect_uris=lists["redirect_uris"],
                post_logout_redirect_uris=lists["post_logout_redirect_uris"],
                scopes=lists["scopes"],
                resources=lists["resources"],
                jwks=jwks,
                access_token_ttl=access_ttl,
                refresh_token_ttl=refresh_ttl,
            )
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
        view = client_view(await locked_client(call, client_id))
    result: dict[str, Any] = {"client": view}
    if registered.client_secret is not None:
        result["client_secret"] = registered.client_secret
    return reply(result, 201)


@api.get(CLIENT)
async def get_client(org: str, client_id: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.CLIENTS_READ) as call:
        return reply({"client": client_view(await locked_client(call, client_id))})


@api.patch(CLIENT)
async def update_client(org: str, client_id: str) -> ResponseReturnValue:
    """Change redirect URIs, grant types, scopes, lifetimes, name or the disabled flag."""
    body = Body(
        await json_body(),
        allowed={
            "client_name",
            "access_token_ttl_seconds",
            "refresh_token_ttl_seconds",
            "disabled",
            *LIST_FIELDS,
        },
    )
    client_name = body.string("client_name", max_chars=200, min_chars=0, required=False)
    changed_lists = read_lists(body)
    access_ttl = body.integer("access_token_ttl_seconds", low=60, high=3600)
    refresh_ttl = body.integer("refresh_token_ttl_seconds", low=300, high=2_592_000)
    disabled = body.boolean("disabled")
    async with admin_call(org, Permission.CLIENTS_WRITE) as call:
        row = await locked_client(call, client_id)
        before = client_view(row)
        lists: dict[str, list[str]] = {}
        for name in LIST_FIELDS:
            changed = changed_lists[name]
            lists[name] = changed if changed is not None else before[name]
        check_lists(row["token_endpoint_auth_method"], lists)
        after = {
            **before,
            **lists,
            "client_name": before["client_name"] if client_name is None else client_name,
            "access_token_ttl_seconds": access_ttl or before["access_token_ttl_seconds"],
            "refresh_token_ttl_seconds": refresh_ttl or before["refresh_token_ttl_seconds"],
            "disabled": before["disabled"] if disabled is None else disabled,
        }
        await call.conn.execute(
            ADMIN_CLIENT_UPDATE,
            call.org_id,
            client_id,
            after["client_name"],
            *(after[name] for name in LIST_FIELDS),
            after["access_token_ttl_seconds"],
            after["refresh_token_ttl_seconds"],
            after["disabled"],
            call.now,
        )
        await record_change(
            call, "oidc.client_updated", client_id, before=audited(before), after=audited(after)
        )
        return reply({"client": client_view(await locked_client(call, client_id))})


@api.post(f"{CLIENT}/rotate-secret")
async def rotate_secret(org: str, client_id: str) -> ResponseReturnValue:
    """Replace the client secret; the old one stops working once the auth plane's cache expires."""
    async with admin_call(org, Permission.CLIENTS_WRITE) as call:
        row = await locked_client(call, client_id)
        if row["token_endpoint_auth_method"] not in SECRET_METHODS:
            raise Conflict(
                f"client {client_id!r} authenticates with {row['token_endpoint_auth_method']}, "
                "not a client secret, so it has no secret to rotate"
            )
        secret = new_client_secret()
        salt, secret_hash = hash_new_client_secret(secret)
        await call.conn.execute(
            ADMIN_CLIENT_SET_SECRET, call.org_id, client_id, salt, secret_hash, call.now
        )
        view = client_view(row)
        await record_change(
            call, "oidc.client_secret_rotated", client_id, before=audited(view), after=audited(view)
        )
    return reply({"client": view, "client_secret": secret})


@api.delete(CLIENT)
async def delete_client(org: str, client_id: str) -> ResponseReturnValue:
    """Delete a client and, with it, every grant and token issued to it."""
    async with admin_call(org, Permission.CLIENTS_WRITE) as call:
        row = await locked_client(call, client_id)
        await call.conn.execute(ADMIN_CLIENT_DELETE, call.org_id, client_id)
        await record_change(
            call, "oidc.client_deleted", client_id, before=audited(client_view(row)), after=None
        )
    return no_content()
