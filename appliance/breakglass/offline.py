"""Offline activation: serving from the sealed snapshot while PostgreSQL is down.

State comes from the snapshot plus the effects of every later activation
(TOTP steps used, failure counters, locks), which live in memory and in the
journal. Attempts are serialised by one lock, standing in for the row lock of
the online path, and every attempt is written to the journal (fsync) before the response is sent.

Limits: each replica has its own journal, so while the database is down a
TOTP code could be used once per replica. Run one break-glass replica per
failure domain, or accept that window. The rate limit per source address is
in memory, per process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jwcrypto import jwk
from nacl.public import PrivateKey

from appliance.breakglass.alerts import ACCOUNT_LOCKED, ACTIVATED, OfflineAlerts
from appliance.breakglass.factors import (
    AccountState,
    Failure,
    check_factors,
    failure_effects,
    spend_unknown_account_time,
)
from appliance.breakglass.issuance import Activation, issue_activation
from appliance.breakglass.journal import Journal, JournalEntry
from appliance.breakglass.online import SOURCE_FAILURE_LIMIT, SOURCE_WINDOW_SECONDS, RecordedFailure
from appliance.breakglass.request import ActivationRequest
from appliance.breakglass.snapshot import Account, Snapshot, unb64
from appliance.keys.envelope import Envelope, associated_data
from appliance.keys.signing import SigningKey

PLANE = "breakglass"


class NoSnapshot(Exception):
    """The database is unreachable and there is no snapshot to serve from."""


@dataclass
class Overlay:
    """Changes to one account since the snapshot was taken."""

    last_totp_step: int = 0
    second_last_step: int = 0
    failed_attempts: int | None = None
    locked_until: float | None = None


@dataclass
class OfflineActivator:
    journal: Journal
    master_secret: bytes = field(repr=False)
    seal_key: PrivateKey = field(repr=False)
    issuer_for: Callable[[str], str]
    # Past this age the snapshot is stale: activation still works, with the
    # credential lifetime capped at `stale_ttl_seconds`.
    max_age_seconds: float = 24 * 3600
    stale_ttl_seconds: int = 5 * 60
    snapshot: Snapshot | None = None
    _overlay: dict[tuple[str, str], Overlay] = field(default_factory=dict)
    _keys: dict[str, SigningKey] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _source_failures: dict[str, list[float]] = field(default_factory=dict)
    alerts: OfflineAlerts | None = None

    def install(self, snapshot: Snapshot, later_entries: list[JournalEntry]) -> None:
        """Serve from `snapshot`, plus the effects of journal entries written after it."""
        self.snapshot = snapshot
        self._overlay = {}
        for entry in later_entries:
            self._apply_entry(entry)

    def _apply_entry(self, entry: JournalEntry) -> None:
        effects = entry.body.get("effects")
        org = entry.body.get("org")
        if entry.kind == "audit" and isinstance(effects, dict) and isinstance(org, str):
            self.note_effects(org, effects)

    def note_effects(self, org: str, effects: dict[str, Any]) -> None:
        """Record an activation's effects, from this path or the online one."""
        key = (org, str(effects.get("account")))
        overlay = self._overlay.setdefault(key, Overlay())
        overlay.last_totp_step = max(
            overlay.last_totp_step, int(effects.get("last_totp_step") or 0)
        )
        overlay.second_last_step = max(
            overlay.second_last_step, int(effects.get("second_last_step") or 0)
        )
        if effects.get("failed_attempts") is not None:
            overlay.failed_attempts = int(effects["failed_attempts"])
            overlay.locked_until = effects.get("locked_until")

    def snapshot_age(self, now: datetime) -> float | None:
        return None if self.snapshot is None else now.timestamp() - self.snapshot.taken_at

    def _state(self, org: str, account: Account) -> AccountState:
        overlay = self._overlay.get((org, account.name), Overlay())
        second = next((c for c in account.custodians if c.position == 2), None)
        locked_until = account.locked_until
        if overlay.failed_attempts is not None:
            locked_until = overlay.locked_until
        return AccountState(
            passphrase_hash=account.passphrase_hash,
            totp_sealed=unb64(account.totp_sealed),
            last_totp_step=max(account.last_totp_step, overlay.last_totp_step),
            disabled=account.disabled,
            locked_until=locked_until,
            custodians_required=account.custodians_required,
            second_totp_sealed=unb64(second.totp_sealed) if second else None,
            second_last_step=max(second.last_totp_step if second else 0, overlay.second_last_step),
        )

    def _signing_key(self, org_id: str, org_name: str) -> SigningKey:
        assert self.snapshot is not None
        sealed = self.snapshot.orgs[org_name].signing_key
        if sealed is None:
            raise Failure("no_signing_key_in_snapshot")
        cached = self._keys.get(sealed.kid)
        if cached is None:
            envelope = Envelope.for_plane(self.master_secret, PLANE)
            plaintext = envelope.open(
                unb64(sealed.nonce),
                unb64(sealed.ciphertext),
                associated_data(org_id, PLANE, sealed.kid),
            )
            cached = SigningKey(sealed.kid, sealed.alg, jwk.JWK.from_json(plaintext.decode()))
            self._keys[sealed.kid] = cached
        return cached

    async def activate(
        self, org_name: str, request: ActivationRequest, *, source_hash: str, now: datetime
    ) -> Activation:
        if self.snapshot is None:
            raise NoSnapshot()
        org = self.snapshot.orgs.get(org_name)
        if org is None:
            raise KeyError(org_name)
        async with self._lock:
            age = now.timestamp() - self.snapshot.taken_at
            degraded = {
                "mode": "degraded",
                "snapshot_taken_at": int(self.snapshot.taken_at),
                "snapshot_age_seconds": int(age),
                "snapshot_stale": age > self.max_age_seconds,
            }
            account = org.accounts.get(request.account)
            try:
                return await self._attempt(
                    org.id, org_name, account, request, source_hash, now, degraded
                )
            except Failure as failure:
                await self._record_failure(
                    org.id, org_name, account, request, source_hash, now, failure.reason, degraded
                )
                raise RecordedFailure(failure.reason) from None

    async def _attempt(
        self,
        org_id: str,
        org_name: str,
        account: Account | None,
        request: ActivationRequest,
        source_hash: str,
        now: datetime,
        degraded: dict[str, Any],
    ) -> Activation:
        recent = [
            t
            for t in self._source_failures.get(source_hash, [])
            if t > time.monotonic() - SOURCE_WINDOW_SECONDS
        ]
        self._source_failures[source_hash] = recent
        if len(recent) >= SOURCE_FAILURE_LIMIT:
            raise Failure("rate_limited")
        if account is None:
            await spend_unknown_account_time(request.passphrase)
            raise Failure("unknown_account")
        steps = await check_factors(
            self._state(org_name, account), request, seal_key=self.seal_key, now=now
        )
        max_ttl = account.max_ttl_seconds
        if degraded["snapshot_stale"]:
            max_ttl = min(max_ttl, self.stale_ttl_seconds)
        activation, data = issue_activation(
            signing_key=self._signing_key(org_id, org_name),
            issuer=self.issuer_for(org_name),
            role=account.role,
            request=request,
            now=now,
            default_ttl=min(account.default_ttl_seconds, max_ttl),
            max_ttl=max_ttl,
            degraded=True,
        )
        data.update(degraded)
        if steps.second is not None:
            data["custodians"] = 2
        effects = {
            "account": account.name,
            "account_id": account.id,
            "last_totp_step": steps.first,
            "second_last_step": steps.second,
            "failed_attempts": 0,
            "locked_until": None,
            "activated_at": now.timestamp(),
        }
        event = _event(request, source_hash, now, ACTIVATED, "success", None, data)
        await self._journal(org_id, org_name, event, effects, ACTIVATED)
        self.note_effects(org_name, effects)
        return activation

    async def _record_failure(
        self,
        org_id: str,
        org_name: str,
        account: Account | None,
        request: ActivationRequest,
        source_hash: str,
        now: datetime,
        reason: str,
        degraded: dict[str, Any],
    ) -> None:
        data: dict[str, Any] = {"incident": request.incident, **degraded}
        effects: dict[str, Any] | None = None
        if reason != "rate_limited":
            self._source_failures.setdefault(source_hash, []).append(time.monotonic())
        if account is not None:
            state = self._overlay.get((org_name, account.name))
            current = (
                state.failed_attempts
                if state and state.failed_attempts is not None
                else account.failed_attempts
            )
            attempts, locked_until = failure_effects(reason, current, now)
            if attempts is not None:
                effects = {
                    "account": account.name,
                    "account_id": account.id,
                    "failed_attempts": attempts,
                    "locked_until": locked_until,
                }
                data["failed_attempts"] = attempts
                if locked_until is not None:
                    data["locked_until"] = int(locked_until)
        event = _event(
            request, source_hash, now, "breakglass.activation_failed", "failure", reason, data
        )
        alert = ACCOUNT_LOCKED if "locked_until" in data else None
        await self._journal(org_id, org_name, event, effects, alert)
        if effects is not None:
            self.note_effects(org_name, effects)

    async def _journal(
        self,
        org_id: str,
        org_name: str,
        event: dict[str, Any],
        effects: dict[str, Any] | None,
        alert_type: str | None,
    ) -> None:
        """Append the attempt to the journal (fsync) and queue its alerts."""
        body: dict[str, Any] = {"org": org_name, "event": event, "effects": effects}
        assert self.snapshot is not None
        targets = self.snapshot.orgs[org_name].alert_targets
        if alert_type is not None and targets:
            body["alerts"] = targets
            body["alert_type"] = alert_type
        entry = await asyncio.to_thread(self.journal.append, "audit", org_id, body)
        if self.alerts is not None and "alerts" in body:
            self.alerts.add(entry)


def _event(
    request: ActivationRequest,
    source_hash: str,
    now: datetime,
    event_type: str,
    outcome: str,
    reason: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "plane": PLANE,
        "actor": request.account,
        "subject": request.account,
        "outcome": outcome,
        "occurred_at": now.timestamp(),
        "failure_reason": reason,
        "source": source_hash,
        "data": data,
    }
