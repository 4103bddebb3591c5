"""OAuth clients: registration, and a short-lived in-memory cache for the token endpoint.

The token endpoint looks a client up on every request. Clients change
rarely, so each replica keeps a client for `CLIENT_CACHE_SECONDS`: a
disabled client, a rotated secret or a removed redirect URI takes effect on
every replica within that time. Unknown client ids are not cached, so
creating a client takes effect at once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from jwcrypto import jwk

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.oidc import CLIENT_BY_ID, CLIENT_INSERT
from appliance.db.tenancy import org_transaction
from appliance.oidc.client_secrets import hash_new_client_secret, new_client_secret
from appliance.oidc.jose import public_key_of
from appliance.oidc.rfc8252 import check_registered_redirect_uri

CLIENT_CACHE_SECONDS = 5.0
CLIENT_CACHE_MAX_ENTRIES = 10_000
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$")
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post", "private_key_jwt", "none"})


@dataclass(frozen=True)
class Client:
    client_id: str
    client_name: str
    client_type: str
    auth_method: str
    secret_salt: bytes | None = field(repr=False)
    secret_hash: bytes | None = field(repr=False)
    # Public keys for private_key_jwt, as (kid, pyca/cryptography key) pairs.
    keys: tuple[tuple[str | None, Any], ...]
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scopes: frozenset[str]
    resources: frozenset[str]
    access_token_ttl: int
    refresh_token_ttl: int
    disabled: bool

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"


def _client_keys(raw: Any) -> tuple[tuple[str | None, Any], ...]:
    if raw is None:
        return ()
    data = json.loads(raw) if isinstance(raw, str) else raw
    keys = []
    for entry in data.get("keys", []):
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        keys.append((entry.get("kid"), public_key_of(jwk.JWK(**public))))
    return tuple(keys)


def client_from_row(row: asyncpg.Record) -> Client:
    return Client(
        client_id=row["client_id"],
        client_name=row["client_name"],
        client_type=row["client_type"],
        auth_method=row["token_endpoint_auth_method"],
        secret_salt=row["secret_salt"],
        secret_hash=row["secret_hash"],
        keys=_client_keys(row["jwks"]),
        redirect_uris=tuple(row["redirect_uris"]),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"]),
        grant_types=frozenset(row["grant_types"]),
        scopes=frozenset(row["scopes"]),
        resources=frozenset(row["resources"]),
        access_token_ttl=row["access_token_ttl_seconds"],
        refresh_token_ttl=row["refresh_token_ttl_seconds"],
        disabled=row["disabled"],
    )


class ClientRegistry:
    """Client lookups by (org, client_id), cached for `CLIENT_CACHE_SECONDS`."""

    def __init__(self, pool: asyncpg.Pool, *, ttl: float = CLIENT_CACHE_SECONDS) -> None:
        self.pool = pool
        self.ttl = ttl
        self._cache: dict[tuple[UUID, str], tuple[float, Client]] = {}

    async def get(self, org_id: UUID, client_id: str) -> Client | None:
        if not CLIENT_ID_PATTERN.match(client_id):
            return None
        key = (org_id, client_id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with org_transaction(self.pool, org_id) as conn:
            row = await conn.fetchrow(CLIENT_BY_ID, org_id, client_id)
        if row is None:
            self._cache.pop(key, None)
            return None
        client = client_from_row(row)
        if len(self._cache) >= CLIENT_CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.ttl, client)
        return client

    def forget(self, org_id: UUID, client_id: str) -> None:
        self._cache.pop((org_id, client_id), None)


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None = field(repr=False)


def _check_registration(
    client_id: str,
    auth_method: str,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    scopes: Sequence[str],
    jwks: dict[str, Any] | None,
) -> None:
    if not CLIENT_ID_PATTERN.match(client_id):
        raise ValueError(f"client_id {client_id!r} must be 1 to 128 of A-Z a-z 0-9 . _ ~ -")
    if auth_method not in AUTH_METHODS:
        raise ValueError(
            f"token_endpoint_auth_method {auth_method!r} is not one of {sorted(AUTH_METHODS)}"
        )
    unknown = set(grant_types) - GRANT_TYPES
    if unknown or not grant_types:
        raise ValueError(
            f"grant types {sorted(unknown)} are not supported: use {sorted(GRANT_TYPES)}"
        )
    if auth_method == "none" and "client_credentials" in grant_types:
        raise ValueError("a public client cannot use client_credentials: it has no credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ValueError("authorization_code needs at least one redirect URI")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        check_registered_redirect_uri(uri)
    for scope in scopes:
        if not SCOPE_TOKEN.match(scope):
            raise ValueError(f"scope {scope!r} is not a valid scope token (RFC 6749 section 3.3)")
    if auth_method == "private_key_jwt":
        if not isinstance(jwks, dict) or not jwks.get("keys"):
            raise ValueError("private_key_jwt needs a JWKS with at least one public key")
        for entry in jwks["keys"]:
            if "d" in entry:
                raise ValueError(
                    "the client JWKS contains a private key; register only public keys"
                )
        _client_keys(jwks)


async def create_client(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    client_id: str,
    auth_method: str,
    grant_types: Sequence[str],
    actor: str,
    now: datetime,
    client_name: str = "",
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    scopes: Sequence[str] = (),
    resources: Sequence[str] = (),
    jwks: dict[str, Any] | None = None,
    access_token_ttl: int = 600,
    refresh_token_ttl: int = 86400,
) -> RegisteredClient:
    """Insert a client in the caller's org-scoped transaction and audit it.

    Returns the client secret for `client_secret_basic`/`_post` clients: it
    is shown once and stored only as a salted hash. Raises `ValueError` with
    the field and the fix when the registration is invalid.
    """
    _check_registration(
        client_id, auth_method, redirect_uris, post_logout_redirect_uris, grant_types, scopes, jwks
    )
    secret: str | None = None
    salt: bytes | None = None
    secret_hash: bytes | None = None
    if auth_method in ("client_secret_basic", "client_secret_post"):
        secret = new_client_secret()
        salt, secret_hash = hash_new_client_secret(secret)
    await conn.execute(
        CLIENT_INSERT,
        org_id,
        client_id,
        client_name,
        "public" if auth_method == "none" else "confidential",
        auth_method,
        salt,
        secret_hash,
        json.dumps(jwks) if jwks is not None else None,
        list(redirect_uris),
        list(post_logout_redirect_uris),
        list(grant_types),
        list(scopes),
        list(resources),
        access_token_ttl,
        refresh_token_ttl,
    )
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="oidc.client_created",
            plane="admin",
            actor=actor,
            subject=client_id,
            outcome="success",
            occurred_at=now,
            data={
                "auth_method": auth_method,
                "grant_types": sorted(grant_types),
                "redirect_uris": list(redirect_uris),
                "scopes": sorted(scopes),
                "resources": sorted(resources),
            },
        ),
    )
    return RegisteredClient(client_id, secret)
