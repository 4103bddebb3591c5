"""TOTP (RFC 6238): verification that raises, with single use per account.

A code is accepted for the current 30-second step and one step either side
(clock skew between the authenticator and the server). The caller stores the
accepted step and passes it back as `last_used_step`; a code for that step or
an earlier one is rejected, so each code works once even within its window.
"""

from __future__ import annotations

import base64
import hmac
import secrets

import pyotp

STEP_SECONDS = 30
DIGITS = 6
# Steps accepted either side of the current one.
SKEW_STEPS = 1


class TotpInvalid(Exception):
    """The code is malformed or outside the window."""


class TotpReplayed(TotpInvalid):
    """The code matches, but its step was already used."""


def new_secret() -> str:
    """Return a random 160-bit TOTP secret in base32, as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(20)).decode()


def code_at(secret_b32: str, step: int) -> str:
    """HOTP (RFC 4226) value of `secret_b32` at counter `step`, SHA-1, 6 digits."""
    return str(pyotp.HOTP(secret_b32, digits=DIGITS).at(step))


def verify_totp(secret_b32: str, code: str, *, now: float, last_used_step: int) -> int:
    """Return the matched step for `code` at time `now`, or raise `TotpInvalid`."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        raise TotpInvalid("code is not six digits")
    current = int(now // STEP_SECONDS)
    matched: int | None = None
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        # Every candidate is compared, so timing does not reveal which step matched.
        if hmac.compare_digest(code_at(secret_b32, step), code) and matched is None:
            matched = step
    if matched is None:
        raise TotpInvalid("code does not match any step in the window")
    if matched <= last_used_step:
        raise TotpReplayed("code was already used")
    return matched


def provisioning_uri(secret_b32: str, *, account: str, issuer: str) -> str:
    """Return the otpauth:// URI that authenticator apps scan."""
    return pyotp.TOTP(secret_b32).provisioning_uri(name=account, issuer_name=issuer)
