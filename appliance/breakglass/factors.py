"""Checking the factors of an activation: passphrase, TOTP, second custodian.

Shared by the online path (state from PostgreSQL rows) and the offline path
(state from the snapshot and the journal), so both apply the same rules.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from nacl.public import PrivateKey

from appliance.breakglass.request import ActivationRequest
from appliance.identity.passwords import PassphraseMismatch, verify_passphrase
from appliance.identity.totp import TotpInvalid, TotpReplayed, verify_totp
from appliance.keys.sealing import unseal

# Five wrong attempts lock an account for 15 minutes: enough for a person who
# mistypes under stress, far too few for guessing a passphrase and a TOTP code.
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60


# Failures that do not count toward the lockout. A reused TOTP code comes with
# the right passphrase: it is the account's own engineer retrying, and counting
# it would let a retrying client lock its own engineer out.
NOT_COUNTED = frozenset(
    {
        "account_locked",
        "account_disabled",
        "rate_limited",
        "unknown_account",
        "totp_replayed",
        "second_totp_replayed",
    }
)


class Failure(Exception):
    """An attempt failed for `reason`: recorded, then reported as ActivationFailed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AccountState:
    """Account state read by the factor check, from PostgreSQL or the snapshot."""

    passphrase_hash: str
    totp_sealed: bytes
    last_totp_step: int
    disabled: bool
    locked_until: float | None
    custodians_required: int
    # The second custodian's sealed seed and last step, for two-person accounts.
    second_totp_sealed: bytes | None = None
    second_last_step: int = 0


@dataclass(frozen=True)
class Steps:
    """The TOTP steps an accepted activation used, to be stored as used."""

    first: int
    second: int | None


async def spend_unknown_account_time(passphrase: str) -> None:
    """Spend the time of a real check, so timing does not reveal that a name is unknown."""
    with contextlib.suppress(PassphraseMismatch):
        await verify_passphrase(None, passphrase)


async def check_factors(
    state: AccountState, request: ActivationRequest, *, seal_key: PrivateKey, now: datetime
) -> Steps:
    """Return the TOTP steps used, or raise `Failure` with the precise reason.

    The passphrase is hashed even for a disabled or locked account, so the
    answer's timing does not reveal that state.
    """
    try:
        await verify_passphrase(state.passphrase_hash, request.passphrase)
        passphrase_ok = True
    except PassphraseMismatch:
        passphrase_ok = False
    if state.disabled:
        raise Failure("account_disabled")
    if state.locked_until is not None and state.locked_until > now.timestamp():
        raise Failure("account_locked")
    if not passphrase_ok:
        raise Failure("wrong_passphrase")
    first = _check_code(state.totp_sealed, request.totp, state.last_totp_step, seal_key, now, "")
    second = None
    if state.custodians_required >= 2:
        if request.second_totp is None:
            raise Failure("second_custodian_missing")
        if state.second_totp_sealed is None:
            raise Failure("second_custodian_not_enrolled")
        second = _check_code(
            state.second_totp_sealed,
            request.second_totp,
            state.second_last_step,
            seal_key,
            now,
            "second_",
        )
    return Steps(first, second)


def _check_code(
    sealed: bytes, code: str, last_step: int, seal_key: PrivateKey, now: datetime, prefix: str
) -> int:
    secret = unseal(seal_key, sealed).decode()
    try:
        return verify_totp(secret, code, now=now.timestamp(), last_used_step=last_step)
    except TotpReplayed:
        raise Failure(f"{prefix}totp_replayed") from None
    except TotpInvalid:
        raise Failure(f"{prefix}wrong_totp") from None


def failure_effects(
    reason: str, failed_attempts: int, now: datetime
) -> tuple[int | None, float | None]:
    """Return the new (failed_attempts, locked_until) after a failure, or Nones to keep them."""
    if reason in NOT_COUNTED:
        return None, None
    attempts = failed_attempts + 1
    locked_until = now.timestamp() + LOCKOUT_SECONDS if attempts >= LOCKOUT_THRESHOLD else None
    return attempts, locked_until
