"""Users: creation with a sealed TOTP seed per plane, and password + TOTP login.

Login follows the break-glass rules: the user row is locked for the attempt,
a TOTP code works once, `LOCKOUT_THRESHOLD` consecutive failures lock the
user for `LOCKOUT_SECONDS`, and the caller learns only `LoginFailed`, while
the audit chain records which check failed (`failure_reason`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
from nacl.public import PrivateKey

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.identity import (
    USER_FOR_UPDATE,
    USER_GROUPS,
    USER_INSERT,
    USER_RECORD_FAILURE,
    USER_RECORD_SUCCESS,
    USER_TOTP_SEAL_UPSERT,
)
from appliance.identity.passwords import PassphraseMismatch, hash_passphrase, verify_passphrase
from appliance.identity.totp import TotpInvalid, TotpReplayed, verify_totp
from appliance.keys.sealing import seal, unseal

LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60


class LoginFailed(Exception):
    """Login failed; `reason` is for the audit log, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AuthenticatedUser:
    id: UUID
    org_id: UUID
    username: str
    display_name: str
    groups: tuple[str, ...]


async def create_user(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    username: str,
    password: str,
    totp_secret: str,
    seal_public_keys: Mapping[str, bytes],
    actor: str,
    now: datetime,
    display_name: str = "",
    email: str = "",
) -> UUID:
    """Insert a user and seal its TOTP seed to each plane in `seal_public_keys`.

    Runs in the caller's transaction, with the org context already set.
    """
    user_id: UUID = await conn.fetchval(
        USER_INSERT, org_id, username, display_name, email, hash_passphrase(password)
    )
    for plane, public_key in seal_public_keys.items():
        await conn.execute(
            USER_TOTP_SEAL_UPSERT, org_id, user_id, plane, seal(public_key, totp_secret.encode())
        )
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="user.created",
            plane="admin",
            actor=actor,
            subject=username,
            outcome="success",
            occurred_at=now,
            data={"display_name": display_name, "totp_sealed_for": sorted(seal_public_keys)},
        ),
    )
    return user_id


async def authenticate(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    plane: str,
    seal_key: PrivateKey,
    username: str,
    password: str,
    totp: str,
    now: datetime,
    source: str | None = None,
) -> AuthenticatedUser:
    """Check password and TOTP in the caller's transaction; audit the outcome.

    On failure the counters and the audit event are written and `LoginFailed`
    is raised, so the caller must commit (not roll back) before responding.
    """
    row = await conn.fetchrow(USER_FOR_UPDATE, org_id, username, plane)
    try:
        step = await _check(row, plane, seal_key, password, totp, now)
    except LoginFailed as failure:
        await _record_failure(conn, org_id, row, plane, username, failure.reason, now, source)
        raise
    assert row is not None
    await conn.execute(USER_RECORD_SUCCESS, row["id"], step, now)
    groups = tuple(r["name"] for r in await conn.fetch(USER_GROUPS, org_id, row["id"]))
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="user.login",
            plane=plane,
            actor=username,
            subject=username,
            outcome="success",
            occurred_at=now,
            source=source,
        ),
    )
    return AuthenticatedUser(row["id"], org_id, username, row["display_name"], groups)


async def _check(
    row: asyncpg.Record | None,
    plane: str,
    seal_key: PrivateKey,
    password: str,
    totp: str,
    now: datetime,
) -> int:
    if row is None:
        with contextlib.suppress(PassphraseMismatch):
            await verify_passphrase(None, password)
        raise LoginFailed("unknown_user")
    if row["disabled"]:
        raise LoginFailed("user_disabled")
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise LoginFailed("user_locked")
    try:
        await verify_passphrase(row["password_hash"], password)
    except PassphraseMismatch:
        raise LoginFailed("wrong_password") from None
    if row["totp_sealed"] is None:
        raise LoginFailed(f"totp_not_enrolled_for_{plane}")
    secret = unseal(seal_key, bytes(row["totp_sealed"])).decode()
    try:
        return verify_totp(secret, totp, now=now.timestamp(), last_used_step=row["last_totp_step"])
    except TotpReplayed:
        raise LoginFailed("totp_replayed") from None
    except TotpInvalid:
        raise LoginFailed("wrong_totp") from None


async def _record_failure(
    conn: asyncpg.Connection,
    org_id: UUID,
    row: asyncpg.Record | None,
    plane: str,
    username: str,
    reason: str,
    now: datetime,
    source: str | None,
) -> None:
    data: dict[str, int] = {}
    if row is not None and reason not in ("user_locked", "user_disabled"):
        attempts = row["failed_attempts"] + 1
        locked_until = (
            now + timedelta(seconds=LOCKOUT_SECONDS) if attempts >= LOCKOUT_THRESHOLD else None
        )
        await conn.execute(USER_RECORD_FAILURE, row["id"], attempts, locked_until, now)
        data["failed_attempts"] = attempts
        if locked_until is not None:
            data["locked_until"] = int(locked_until.timestamp())
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="user.login_failed",
            plane=plane,
            actor=username,
            subject=username,
            outcome="failure",
            occurred_at=now,
            failure_reason=reason,
            source=source,
            data=data,
        ),
    )
