"""Break-glass activation: passphrase + TOTP + incident -> SD-JWT credential.

This is the dangerous path of the product: it hands out privileged access
without approval. So every attempt, successful or not, is appended to the
org's audit chain in the same transaction as its effects, and the client
learns only "activation failed", never which factor was wrong.

Rules:
- the account row is locked for the whole attempt, so concurrent attempts on
  one account are serialised and a TOTP code can be used once;
- after `LOCKOUT_THRESHOLD` consecutive failures the account locks for
  `LOCKOUT_SECONDS`; a correct attempt during the lock still fails;
- more than `SOURCE_FAILURE_LIMIT` failures from one source address within
  `SOURCE_WINDOW_SECONDS` are rejected with 429 before any factor is checked,
  which bounds password guessing across accounts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from jwcrypto import jwk

from appliance.audit.chain import AuditEvent, append
from appliance.breakglass.request import ActivationRequest
from appliance.clock import Clock
from appliance.credentials.issue import issue_sd_jwt
from appliance.db.queries.breakglass import (
    ACCOUNT_FOR_UPDATE,
    ACCOUNT_RECORD_FAILURE,
    ACCOUNT_RECORD_SUCCESS,
)
from appliance.db.queries.orgs import ORG_BY_NAME
from appliance.db.queries.ratelimit import RATE_LIMIT_HITS, RATE_LIMIT_RECORD
from appliance.db.tenancy import org_transaction
from appliance.errors import ActivationFailed, NotFound, RateLimited
from appliance.identity.passwords import PassphraseMismatch, verify_passphrase
from appliance.identity.totp import TotpInvalid, TotpReplayed, verify_totp
from appliance.keys.envelope import derive_key
from appliance.keys.sealing import sealing_private_key, unseal
from appliance.keys.signing import SigningKeyStore

log = logging.getLogger("appliance.breakglass")

PLANE = "breakglass"
CREDENTIAL_TYPE = "urn:appliance:credential:breakglass"
# Five wrong attempts lock an account for 15 minutes: enough for a person who
# mistypes under stress, far too few for guessing a passphrase and a TOTP code.
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60
SOURCE_FAILURE_LIMIT = 20
SOURCE_WINDOW_SECONDS = 15 * 60
RATE_LIMIT_SCOPE = "breakglass-source"


@dataclass(frozen=True)
class Activation:
    credential: str
    issuer: str
    kid: str
    credential_id: str
    issued_at: int
    expires_at: int
    ttl_seconds: int
    ttl_capped: bool


class _Failure(Exception):
    """An attempt failed for `reason`; recorded, then reported as ActivationFailed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BreakglassService:
    """Activations for every org, using the break-glass plane's pool and keys."""

    def __init__(
        self, pool: asyncpg.Pool, master_secret: bytes, *, public_url: str, clock: Clock
    ) -> None:
        self.pool = pool
        self.keys = SigningKeyStore(PLANE, master_secret)
        self.public_url = public_url
        self.clock = clock
        self._seal_key = sealing_private_key(master_secret, PLANE)
        self._source_key = derive_key(master_secret, plane=PLANE, purpose="source-address-hmac")

    @property
    def seal_public_key(self) -> bytes:
        return bytes(self._seal_key.public_key)

    def issuer(self, org_name: str) -> str:
        return f"{self.public_url}/o/{org_name}/breakglass"

    def source_hash(self, address: str) -> str:
        """Keyed hash of a client address: comparable across requests, not reversible."""
        return hmac.new(self._source_key, address.encode(), hashlib.sha256).hexdigest()[:32]

    async def org_id(self, org_name: str) -> UUID:
        row = await self.pool.fetchrow(ORG_BY_NAME, org_name)
        if row is None:
            raise NotFound(f"org {org_name!r} not found")
        org_id: UUID = row["id"]
        return org_id

    async def activate(self, org_name: str, request: ActivationRequest, *, source: str) -> Activation:
        org_id = await self.org_id(org_name)
        source_hash = self.source_hash(source)
        async with org_transaction(self.pool, org_id) as conn:
            now = self.clock()
            try:
                return await self._attempt(conn, org_id, org_name, request, source_hash, now)
            except _Failure as failure:
                reason = failure.reason
                await self._record_failure(conn, org_id, request, source_hash, now, reason)
        # The transaction above committed the failure; only now tell the client.
        if reason == "rate_limited":
            raise RateLimited(
                "too many failed activations from this address; retry later",
                headers={"Retry-After": str(SOURCE_WINDOW_SECONDS)},
            )
        raise ActivationFailed(
            "activation failed: check the account name, passphrase and current TOTP code; "
            "repeated failures lock the account"
        )

    async def _attempt(
        self,
        conn: asyncpg.Connection,
        org_id: UUID,
        org_name: str,
        request: ActivationRequest,
        source_hash: str,
        now: datetime,
    ) -> Activation:
        window_start = now - timedelta(seconds=SOURCE_WINDOW_SECONDS)
        source_failures = await conn.fetchval(RATE_LIMIT_HITS, RATE_LIMIT_SCOPE, source_hash, window_start)
        if source_failures >= SOURCE_FAILURE_LIMIT:
            raise _Failure("rate_limited")
        account = await conn.fetchrow(ACCOUNT_FOR_UPDATE, org_id, request.account)
        if account is None:
            # Spend the time of a real check, so timing does not reveal the name is unknown.
            with contextlib.suppress(PassphraseMismatch):
                await verify_passphrase(None, request.passphrase)
            raise _Failure("unknown_account")
        if account["disabled"]:
            raise _Failure("account_disabled")
        if account["locked_until"] is not None and account["locked_until"] > now:
            raise _Failure("account_locked")
        totp_secret = unseal(self._seal_key, bytes(account["totp_secret_sealed"])).decode()
        step = await _verify_factors(
            account["passphrase_hash"], request, now, account["last_totp_step"], totp_secret
        )
        return await self._issue(conn, org_id, org_name, account, request, source_hash, now, step)

    async def _issue(
        self,
        conn: asyncpg.Connection,
        org_id: UUID,
        org_name: str,
        account: asyncpg.Record,
        request: ActivationRequest,
        source_hash: str,
        now: datetime,
        totp_step: int,
    ) -> Activation:
        requested = request.ttl_seconds or account["default_ttl_seconds"]
        ttl = min(requested, account["max_ttl_seconds"])
        signing_key = await self.keys.active(conn, org_id, now=now)
        issued_at = int(now.timestamp())
        credential_id = str(uuid.uuid4())
        issuer = self.issuer(org_name)
        credential = issue_sd_jwt(
            signing_key=signing_key.key,
            kid=signing_key.kid,
            issuer=issuer,
            subject=request.account,
            holder_jwk=request.holder_jwk,
            iat=issued_at,
            nbf=issued_at,
            exp=issued_at + ttl,
            disclosable={
                "role": account["role"],
                "incident": request.incident,
                "reason": request.reason,
            },
            claims={"jti": credential_id},
            vct=CREDENTIAL_TYPE,
        )
        await conn.execute(ACCOUNT_RECORD_SUCCESS, account["id"], totp_step, now)
        await append(
            conn,
            org_id,
            AuditEvent(
                event_type="breakglass.activated",
                plane=PLANE,
                actor=request.account,
                subject=request.account,
                outcome="success",
                occurred_at=now,
                source=source_hash,
                data={
                    "incident": request.incident,
                    "reason": request.reason,
                    "role": account["role"],
                    "credential_id": credential_id,
                    "kid": signing_key.kid,
                    "issued_at": issued_at,
                    "expires_at": issued_at + ttl,
                    "ttl_seconds": ttl,
                    "holder_jkt": holder_thumbprint(request.holder_jwk),
                },
            ),
        )
        return Activation(
            credential=credential,
            issuer=issuer,
            kid=signing_key.kid,
            credential_id=credential_id,
            issued_at=issued_at,
            expires_at=issued_at + ttl,
            ttl_seconds=ttl,
            ttl_capped=ttl < requested,
        )

    async def _record_failure(
        self,
        conn: asyncpg.Connection,
        org_id: UUID,
        request: ActivationRequest,
        source_hash: str,
        now: datetime,
        reason: str,
    ) -> None:
        data: dict[str, Any] = {"incident": request.incident}
        if reason != "rate_limited":
            await conn.execute(RATE_LIMIT_RECORD, RATE_LIMIT_SCOPE, source_hash, _window(now))
            account = await conn.fetchrow(ACCOUNT_FOR_UPDATE, org_id, request.account)
            if account is not None and reason not in ("account_locked", "account_disabled"):
                attempts = account["failed_attempts"] + 1
                locked_until = None
                if attempts >= LOCKOUT_THRESHOLD:
                    locked_until = now + timedelta(seconds=LOCKOUT_SECONDS)
                    data["locked_until"] = int(locked_until.timestamp())
                await conn.execute(ACCOUNT_RECORD_FAILURE, account["id"], attempts, locked_until, now)
                data["failed_attempts"] = attempts
        await append(
            conn,
            org_id,
            AuditEvent(
                event_type="breakglass.activation_failed",
                plane=PLANE,
                actor=request.account,
                subject=request.account,
                outcome="failure",
                occurred_at=now,
                failure_reason=reason,
                source=source_hash,
                data=data,
            ),
        )


async def _verify_factors(
    passphrase_hash: str,
    request: ActivationRequest,
    now: datetime,
    last_totp_step: int,
    totp_secret: str,
) -> int:
    """Check passphrase, then TOTP; return the TOTP step used, or raise `_Failure`."""
    try:
        await verify_passphrase(passphrase_hash, request.passphrase)
    except PassphraseMismatch:
        raise _Failure("wrong_passphrase") from None
    try:
        return verify_totp(totp_secret, request.totp, now=now.timestamp(), last_used_step=last_totp_step)
    except TotpReplayed:
        raise _Failure("totp_replayed") from None
    except TotpInvalid:
        raise _Failure("wrong_totp") from None


def _window(now: datetime) -> datetime:
    """Start of the one-minute bucket that `now` falls in."""
    return now.replace(second=0, microsecond=0)


def holder_thumbprint(holder_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of the holder key, recorded in the audit event."""
    return str(jwk.JWK(**holder_jwk).thumbprint())
