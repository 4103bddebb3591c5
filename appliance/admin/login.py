"""Password + TOTP login to the admin plane, shared by the JSON API and the console."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from appliance.admin.errors import Unauthorized
from appliance.admin.service import PLANE, SESSION_SECONDS, client_token, service
from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.admin import ADMIN_ROLES_OF_USER
from appliance.db.tenancy import org_transaction
from appliance.errors import NotFound
from appliance.identity.sessions import create_session
from appliance.identity.users import LoginFailed, authenticate
from appliance.keys.envelope import EnvelopeError
from appliance.log import log_fields

log = logging.getLogger("appliance.admin")

LOGIN_FAILED = (
    "login failed: check the username, password and current TOTP code, and that the user "
    "holds an admin role in this org; repeated failures lock the user"
)


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime
    roles: list[str]


async def log_in(org: str, username: str, password: str, totp: str, *, source: str) -> LoginResult:
    """Check the factors and that the user holds an admin role; return a new session.

    Every failure commits its counters and audit event, then raises one
    opaque `Unauthorized`; the audit event contains the precise reason.
    Too many failures from the client address `source` raise `RateLimited`
    before any factor is checked.
    """
    svc = service()
    org_row = await svc.org(org)
    if org_row is None:
        raise NotFound(f"org {org[:64]!r} not found")
    org_id = org_row["id"]
    failure: str | None = None
    source_hash = svc.source_limit.source_hash(source)
    async with org_transaction(svc.pool, org_id) as conn:
        now = svc.clock()
        await svc.source_limit.check(conn, source_hash, now)
        try:
            user = await authenticate(
                conn,
                org_id,
                plane=PLANE,
                seal_key=svc.seal_key,
                username=username,
                password=password,
                totp=totp,
                now=now,
            )
        except LoginFailed as error:
            failure = error.reason
        except EnvelopeError:
            # The stored seed was sealed to another admin key (a changed master secret).
            log.error("admin TOTP seal does not open", extra=log_fields(org=org, user=username))
            failure = "totp_seal_unreadable"
        if failure is None:
            roles = [r["role"] for r in await conn.fetch(ADMIN_ROLES_OF_USER, org_id, user.id)]
            if roles:
                secret, expires_at = await create_session(
                    conn, org_id, user.id, plane=PLANE, now=now, lifetime_seconds=SESSION_SECONDS
                )
                return LoginResult(client_token(org, secret), expires_at, roles)
            failure = "no_admin_role"
            await append(
                conn,
                org_id,
                AuditEvent(
                    event_type="admin.login_denied",
                    plane=PLANE,
                    actor=username,
                    subject=username,
                    outcome="failure",
                    occurred_at=now,
                    failure_reason=failure,
                ),
            )
        await svc.source_limit.record_failure(conn, source_hash, now)
    # The transaction above committed the failure counters and audit event.
    log.info("admin login failed", extra=log_fields(org=org, failure_reason=failure))
    raise Unauthorized(LOGIN_FAILED)
