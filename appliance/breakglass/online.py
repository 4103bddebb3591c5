"""Online activation: PostgreSQL is the source of truth.

The account row (and its custodians) is locked for the whole attempt, so
concurrent attempts on one account are serialised and a TOTP code works
once. Every attempt, success or failure, is appended to the org's audit
chain in the same transaction as its effects. A failure commits its counters
and audit event first; only then does the client get the response, and only "activation
failed", never which factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from nacl.public import PrivateKey

from appliance.audit.chain import AuditEvent, append
from appliance.breakglass.alerts import ACCOUNT_LOCKED, ACTIVATED, enqueue_alerts
from appliance.breakglass.factors import (
    AccountState,
    Failure,
    check_factors,
    failure_effects,
    spend_unknown_account_time,
)
from appliance.breakglass.issuance import Activation, issue_activation
from appliance.breakglass.request import ActivationRequest
from appliance.db.queries.breakglass import (
    ACCOUNT_FOR_UPDATE,
    ACCOUNT_RECORD_FAILURE,
    ACCOUNT_RECORD_SUCCESS,
    CUSTODIAN_RECORD_STEP,
    CUSTODIANS_FOR_UPDATE,
)
from appliance.db.queries.ratelimit import RATE_LIMIT_HITS, RATE_LIMIT_RECORD
from appliance.db.tenancy import org_transaction
from appliance.keys.signing import SigningKeyStore

PLANE = "breakglass"
# More than this many failures from one source address within the window are
# rejected with 429 before any factor is checked, which bounds guessing
# across accounts.
SOURCE_FAILURE_LIMIT = 20
SOURCE_WINDOW_SECONDS = 15 * 60
RATE_LIMIT_SCOPE = "breakglass-source"


@dataclass(frozen=True)
class Attempt:
    org_id: UUID
    org_name: str
    issuer: str
    request: ActivationRequest
    source_hash: str
    now: datetime


class RecordedFailure(Exception):
    """A failed attempt whose counters and audit event are committed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def activate_online(
    pool: asyncpg.Pool, keys: SigningKeyStore, seal_key: PrivateKey, attempt: Attempt
) -> tuple[Activation, dict[str, Any]]:
    """Activate in one transaction; return the activation and the state it changed."""
    async with org_transaction(pool, attempt.org_id) as conn:
        try:
            return await _attempt(conn, keys, seal_key, attempt)
        except Failure as failure:
            reason = failure.reason
            await _record_failure(conn, attempt, reason)
    raise RecordedFailure(reason)


async def _attempt(
    conn: asyncpg.Connection, keys: SigningKeyStore, seal_key: PrivateKey, attempt: Attempt
) -> tuple[Activation, dict[str, Any]]:
    request, now = attempt.request, attempt.now
    window_start = now - timedelta(seconds=SOURCE_WINDOW_SECONDS)
    failures = await conn.fetchval(
        RATE_LIMIT_HITS, RATE_LIMIT_SCOPE, attempt.source_hash, window_start
    )
    if failures >= SOURCE_FAILURE_LIMIT:
        raise Failure("rate_limited")
    account = await conn.fetchrow(ACCOUNT_FOR_UPDATE, attempt.org_id, request.account)
    if account is None:
        await spend_unknown_account_time(request.passphrase)
        raise Failure("unknown_account")
    second = None
    if account["custodians_required"] >= 2:
        custodians = await conn.fetch(CUSTODIANS_FOR_UPDATE, account["id"])
        second = next((c for c in custodians if c["position"] == 2), None)
    state = AccountState(
        passphrase_hash=account["passphrase_hash"],
        totp_sealed=bytes(account["totp_secret_sealed"]),
        last_totp_step=account["last_totp_step"],
        disabled=account["disabled"],
        locked_until=account["locked_until"].timestamp() if account["locked_until"] else None,
        custodians_required=account["custodians_required"],
        second_totp_sealed=bytes(second["totp_secret_sealed"]) if second else None,
        second_last_step=second["last_totp_step"] if second else 0,
    )
    steps = await check_factors(state, request, seal_key=seal_key, now=now)
    signing_key = await keys.active(conn, attempt.org_id, now=now)
    activation, data = issue_activation(
        signing_key=signing_key,
        issuer=attempt.issuer,
        role=account["role"],
        request=request,
        now=now,
        default_ttl=account["default_ttl_seconds"],
        max_ttl=account["max_ttl_seconds"],
    )
    await conn.execute(ACCOUNT_RECORD_SUCCESS, account["id"], steps.first, now)
    if steps.second is not None:
        await conn.execute(CUSTODIAN_RECORD_STEP, account["id"], 2, steps.second)
        data["custodians"] = 2
    event = _event(attempt, ACTIVATED, "success", None, data)
    await append(conn, attempt.org_id, event)
    await enqueue_alerts(
        conn,
        attempt.org_id,
        event_id=event.event_id,
        event_type=ACTIVATED,
        subject=request.account,
        data=data,
        now=now,
    )
    effects = {
        "account": request.account,
        "last_totp_step": steps.first,
        "second_last_step": steps.second,
        "failed_attempts": 0,
        "locked_until": None,
    }
    return activation, effects


async def _record_failure(conn: asyncpg.Connection, attempt: Attempt, reason: str) -> None:
    request, now = attempt.request, attempt.now
    data: dict[str, Any] = {"incident": request.incident}
    if reason != "rate_limited":
        await conn.execute(RATE_LIMIT_RECORD, RATE_LIMIT_SCOPE, attempt.source_hash, _window(now))
        account = await conn.fetchrow(ACCOUNT_FOR_UPDATE, attempt.org_id, request.account)
        if account is not None:
            attempts, locked_until = failure_effects(reason, account["failed_attempts"], now)
            if attempts is not None:
                until = datetime.fromtimestamp(locked_until, UTC) if locked_until else None
                await conn.execute(ACCOUNT_RECORD_FAILURE, account["id"], attempts, until, now)
                data["failed_attempts"] = attempts
                if locked_until is not None:
                    data["locked_until"] = int(locked_until)
    event = _event(attempt, "breakglass.activation_failed", "failure", reason, data)
    await append(conn, attempt.org_id, event)
    if "locked_until" in data:
        await enqueue_alerts(
            conn,
            attempt.org_id,
            event_id=event.event_id,
            event_type=ACCOUNT_LOCKED,
            subject=request.account,
            data={**data, "failure_reason": reason},
            now=now,
        )


def _window(now: datetime) -> datetime:
    """Start of the one-minute bucket that `now` falls in."""
    return now.replace(second=0, microsecond=0)


def _event(
    attempt: Attempt, event_type: str, outcome: str, reason: str | None, data: dict[str, Any]
) -> AuditEvent:
    return AuditEvent(
        event_type=event_type,
        plane=PLANE,
        actor=attempt.request.account,
        subject=attempt.request.account,
        outcome=outcome,
        occurred_at=attempt.now,
        failure_reason=reason,
        source=attempt.source_hash,
        data=data,
    )
