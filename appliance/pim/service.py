"""The PIM plane's service: sign-in, sessions, and the transaction around each call.

Every call of a signed-in user runs in one org transaction: the session is
loaded, the work runs inside a savepoint, and a `Rejected` rule rolls the
savepoint back, appends the failure to the audit chain, commits, and only
then returns the rejection's error to the client.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from appliance.audit.chain import append
from appliance.clock import Clock
from appliance.db.queries.orgs import ORG_BY_NAME
from appliance.db.tenancy import org_transaction
from appliance.errors import ApiError, NotFound
from appliance.identity.sessions import create_session, load_session, revoke_session
from appliance.identity.source_limit import SourceLimit
from appliance.identity.users import LoginFailed as IdentityLoginFailed
from appliance.identity.users import authenticate
from appliance.keys.envelope import derive_key
from appliance.keys.sealing import sealing_private_key
from appliance.keys.signing import SigningKeyStore
from appliance.log import log_fields
from appliance.pim.audit import PLANE, Rejected
from appliance.pim.decisions import Actor
from appliance.pim.errors import LoginFailed, Unauthorized
from appliance.pim.validation import LoginBody

log = logging.getLogger("appliance.pim")

T = TypeVar("T")

RATE_LIMIT_SCOPE: Final = "pim-login-source"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class CallContext:
    """One signed-in call: its transaction, org, actor and time."""

    conn: asyncpg.Connection
    org_id: UUID
    org: str
    actor: Actor
    session_token: str
    now: datetime


def cookies_must_be_secure(public_url: str) -> bool:
    """Return False only for plain http on loopback (development), else True."""
    parts = urlsplit(public_url)
    return not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


class PimService:
    """The PIM plane for every org, on the plane's pool and keys."""

    def __init__(
        self, pool: asyncpg.Pool, master_secret: bytes, *, public_url: str, clock: Clock
    ) -> None:
        self.pool = pool
        self.keys = SigningKeyStore(PLANE, master_secret)
        self.seal_key = sealing_private_key(master_secret, PLANE)
        self.public_url = public_url
        self.clock = clock
        self.secure_cookies = cookies_must_be_secure(public_url)
        self._csrf_key = derive_key(master_secret, plane=PLANE, purpose="csrf-token")
        self.source_limit = SourceLimit(master_secret, plane=PLANE, scope=RATE_LIMIT_SCOPE)

    @property
    def seal_public_key(self) -> bytes:
        return bytes(self.seal_key.public_key)

    def issuer(self, org: str) -> str:
        return f"{self.public_url}/o/{org}/pim"

    def csrf_token(self, session_token: str) -> str:
        """CSRF token of a web session: an HMAC of its session token, so it needs no storage."""
        return hmac.new(self._csrf_key, session_token.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session_token: str, submitted: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session_token), submitted)

    async def org_id(self, org: str) -> UUID:
        row = await self.pool.fetchrow(ORG_BY_NAME, org)
        if row is None:
            raise NotFound(f"org {org!r} not found")
        org_id: UUID = row["id"]
        return org_id

    async def login(self, org: str, body: LoginBody, *, source: str) -> tuple[str, datetime, str]:
        """Check password and TOTP; return a new session token, its expiry and the username."""
        org_id = await self.org_id(org)
        source_hash = self.source_limit.source_hash(source)
        failed = False
        async with org_transaction(self.pool, org_id) as conn:
            now = self.clock()
            await self.source_limit.check(conn, source_hash, now)
            try:
                user = await authenticate(
                    conn,
                    org_id,
                    plane=PLANE,
                    seal_key=self.seal_key,
                    username=body.username,
                    password=body.password,
                    totp=body.totp,
                    now=now,
                    source=source_hash,
                )
            except IdentityLoginFailed:
                # Commit the counters and the audit event written by authenticate.
                await self.source_limit.record_failure(conn, source_hash, now)
                failed = True
            else:
                token, expires_at = await create_session(
                    conn, org_id, user.id, plane=PLANE, now=now
                )
        if failed:
            raise LoginFailed(
                "sign-in failed: check the user name, password and current TOTP code; "
                "repeated failures lock the user"
            )
        return token, expires_at, body.username

    async def logout(self, org: str, token: str) -> None:
        org_id = await self.org_id(org)
        async with org_transaction(self.pool, org_id) as conn:
            await revoke_session(conn, token, now=self.clock())

    @asynccontextmanager
    async def signed_in(self, org: str, token: str | None) -> AsyncIterator[CallContext]:
        """Open the org transaction of a call and load its session, or raise Unauthorized."""
        org_id = await self.org_id(org)
        async with org_transaction(self.pool, org_id) as conn:
            now = self.clock()
            session = await load_session(conn, org_id, token or "", plane=PLANE, now=now)
            if session is None:
                raise Unauthorized(
                    "session is missing, expired or revoked; sign in again (`appliance pim login`)"
                )
            actor = Actor(session.user_id, session.username)
            yield CallContext(conn, org_id, org, actor, token or "", now)

    async def guarded(
        self, org: str, token: str | None, work: Callable[[CallContext], Awaitable[T]]
    ) -> T:
        """Run `work` for a signed-in user; audit and raise the error of a `Rejected` rule."""
        error: ApiError | None = None
        async with self.signed_in(org, token) as ctx:
            try:
                async with ctx.conn.transaction():
                    return await work(ctx)
            except Rejected as rejected:
                await append(ctx.conn, ctx.org_id, rejected.event(ctx.now))
                log.info(
                    "pim call rejected",
                    extra=log_fields(
                        org=org,
                        actor=ctx.actor.username,
                        event=rejected.event_type,
                        subject=rejected.subject,
                        failure_reason=rejected.reason,
                    ),
                )
                error = rejected.error
        assert error is not None
        raise error
