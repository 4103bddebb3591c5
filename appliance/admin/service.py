"""The admin plane's service object and the per-call context: who calls, in which org.

A session token handed to a client has the form `<org>.<secret>`. The org
names where the plane looks the session up (sessions are org-scoped rows
under row-level security), and the secret is the token of
`appliance.identity.sessions`, stored only as a SHA-256. Every call checks,
in this order: a live admin-plane session (else 401), the URL's org equals
the session's org (else 404, so a caller from another org learns nothing,
not even whether the org exists), and the caller's roles in that org grant
the permission the call needs (else 403).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from nacl.public import PrivateKey
from quart import current_app, request

from appliance.admin.errors import Unauthorized
from appliance.admin.rbac import Caller, Permission
from appliance.clock import Clock
from appliance.db.queries.admin import ADMIN_ORG_GET, ADMIN_ROLES_OF_USER
from appliance.db.tenancy import org_transaction
from appliance.errors import NotFound
from appliance.identity.sessions import MAX_TOKEN_CHARS, load_session
from appliance.identity.source_limit import SourceLimit
from appliance.keys.envelope import derive_key
from appliance.keys.sealing import sealing_private_key

PLANE = "admin"
ORG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SECRET_PATTERN = re.compile(rf"^[A-Za-z0-9_-]{{20,{MAX_TOKEN_CHARS}}}$")
# Admin sessions are short: a stolen token can change every account of an org.
SESSION_SECONDS = 15 * 60


class AdminService:
    """Shared state of the admin plane: its pool, clock and keys derived from its master secret."""

    def __init__(
        self, pool: asyncpg.Pool, master_secret: bytes, *, public_url: str, clock: Clock
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.public_url = public_url
        self.seal_key: PrivateKey = sealing_private_key(master_secret, PLANE)
        self.console_key = derive_key(master_secret, plane=PLANE, purpose="console-csrf")
        self.source_limit = SourceLimit(master_secret, plane=PLANE, scope="admin-login-source")

    @property
    def seal_public_key(self) -> bytes:
        return bytes(self.seal_key.public_key)

    async def org(self, name: str) -> asyncpg.Record | None:
        if not ORG_PATTERN.fullmatch(name):
            return None
        row: asyncpg.Record | None = await self.pool.fetchrow(ADMIN_ORG_GET, name)
        return row


def service() -> AdminService:
    svc: AdminService = current_app.extensions["admin"]
    return svc


def client_token(org_name: str, secret: str) -> str:
    return f"{org_name}.{secret}"


def split_token(token: str) -> tuple[str, str]:
    """Split `<org>.<secret>`; raise `Unauthorized` when it has another shape."""
    org_name, dot, secret = token.partition(".")
    if not dot or not ORG_PATTERN.fullmatch(org_name) or not SECRET_PATTERN.fullmatch(secret):
        raise Unauthorized("the session token is malformed: log in again")
    return org_name, secret


def bearer_token() -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthorized(
            "authentication required: send Authorization: Bearer <token> from "
            "POST /admin/v1/orgs/{org}/login"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


@dataclass(frozen=True)
class Call:
    """One authorised admin API call: its transaction, caller and time."""

    conn: asyncpg.Connection
    caller: Caller
    now: datetime
    session_expires_at: datetime

    @property
    def org_id(self) -> UUID:
        return self.caller.org_id

    @property
    def actor(self) -> str:
        return self.caller.username


@asynccontextmanager
async def admin_call(
    org: str, permission: Permission | None, *, token: str | None = None
) -> AsyncIterator[Call]:
    """Authenticate the caller and open a transaction scoped to `org`.

    `permission=None` needs a live session only (for example, `me`).
    """
    svc = service()
    token_org, secret = split_token(token if token is not None else bearer_token())
    org_row = await svc.org(token_org)
    if org_row is None:
        raise Unauthorized("the session is unknown, expired or revoked: log in again")
    async with org_transaction(svc.pool, org_row["id"]) as conn:
        now = svc.clock()
        session = await load_session(conn, org_row["id"], secret, plane=PLANE, now=now)
        if session is None:
            raise Unauthorized("the session is unknown, expired or revoked: log in again")
        if org != token_org:
            raise NotFound(f"org {org[:64]!r} not found")
        roles = frozenset(
            r["role"] for r in await conn.fetch(ADMIN_ROLES_OF_USER, org_row["id"], session.user_id)
        )
        caller = Caller(
            user_id=session.user_id,
            username=session.username,
            org_id=org_row["id"],
            org_name=token_org,
            roles=roles,
            session_id=session.id,
        )
        if permission is not None:
            caller.require(permission)
        yield Call(conn, caller, now, session.expires_at)
