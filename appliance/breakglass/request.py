"""Validation of an activation request body, with an error per field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jwcrypto import jwk

from appliance.errors import InvalidRequest

ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
INCIDENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}$")
MAX_REASON_CHARS = 1000
MAX_PASSPHRASE_CHARS = 1024
# Break-glass credentials live at most one hour: long enough to fix an outage,
# short enough that a leaked credential is soon worthless.
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 3600
ALLOWED_HOLDER_KEYS = {("EC", "P-256"), ("OKP", "Ed25519")}


@dataclass(frozen=True)
class ActivationRequest:
    account: str
    passphrase: str = field(repr=False)
    totp: str = field(repr=False)
    incident: str
    reason: str
    holder_jwk: dict[str, Any]
    ttl_seconds: int | None = None
    # The second custodian's TOTP code, for accounts under the two-person rule.
    second_totp: str | None = field(default=None, repr=False)


def _string(
    body: dict[str, Any], name: str, *, max_chars: int, required: bool = True
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidRequest(f"{name} is empty")
    if len(value) > max_chars:
        raise InvalidRequest(f"{name} is longer than {max_chars} characters")
    check_text(name, value)
    return value


def check_text(name: str, value: str) -> None:
    """Reject what PostgreSQL text and UTF-8 cannot carry: NUL, other control
    characters except tab and newline, and unpaired surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} contains an unpaired surrogate: send valid Unicode") from None
    if any((ord(char) < 0x20 and char not in "\t\n") or char == "\x7f" for char in value):
        raise InvalidRequest(f"{name} contains a control character; remove it")


def _is_code(value: str) -> bool:
    return len(value) == 6 and value.isascii() and value.isdigit()


def parse_holder_jwk(value: Any) -> dict[str, Any]:
    """Accept a public EC P-256 or Ed25519 JWK; reject private or foreign keys."""
    if not isinstance(value, dict):
        raise InvalidRequest("holder_jwk must be a JSON object (a public JWK)")
    if "d" in value:
        raise InvalidRequest("holder_jwk contains a private key ('d'); send only the public key")
    key_type = (value.get("kty"), value.get("crv"))
    if key_type not in ALLOWED_HOLDER_KEYS:
        raise InvalidRequest(
            f"holder_jwk kty/crv {key_type[0]!r}/{key_type[1]!r} is not supported: "
            "use EC P-256 or OKP Ed25519"
        )
    coordinates = ("x", "y") if key_type[0] == "EC" else ("x",)
    for name in coordinates:
        if not isinstance(value.get(name), str) or not value[name] or len(value[name]) > 128:
            raise InvalidRequest(f"holder_jwk.{name} is missing or invalid")
    allowed = {"kty", "crv", "x", "y", "kid", "alg", "use"}
    public = {k: v for k, v in value.items() if k in allowed and isinstance(v, str)}
    try:
        # Loading the key checks that the coordinates decode and lie on the curve.
        jwk.JWK(**public).get_op_key("verify")
    except (ValueError, TypeError, jwk.InvalidJWKValue, jwk.InvalidJWKOperation):
        raise InvalidRequest(
            "holder_jwk is not a valid public key: "
            "its coordinates do not decode to a point on the curve"
        ) from None
    return public


def parse_activation_request(body: Any) -> ActivationRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    account = _string(body, "account", max_chars=63) or ""
    if not ACCOUNT_PATTERN.fullmatch(account):
        raise InvalidRequest(f"account {account[:63]!r} is not a valid account name")
    passphrase = _string(body, "passphrase", max_chars=MAX_PASSPHRASE_CHARS) or ""
    totp = _string(body, "totp", max_chars=16) or ""
    if not _is_code(totp):
        raise InvalidRequest("totp must be the six digits shown by the authenticator")
    second_totp = _string(body, "second_totp", max_chars=16, required=False)
    if second_totp is not None and not _is_code(second_totp):
        raise InvalidRequest(
            "second_totp must be the six digits of the second custodian's authenticator"
        )
    incident = _string(body, "incident", max_chars=128) or ""
    if not INCIDENT_PATTERN.fullmatch(incident):
        raise InvalidRequest(
            f"incident {incident[:128]!r} is invalid: use letters, digits and . _ : / # -"
        )
    reason = _string(body, "reason", max_chars=MAX_REASON_CHARS) or ""
    ttl = body.get("ttl_seconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
        raise InvalidRequest("ttl_seconds must be an integer number of seconds")
    if ttl is not None and not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise InvalidRequest(
            f"ttl_seconds={ttl} is out of range: use {MIN_TTL_SECONDS}..{MAX_TTL_SECONDS}"
        )
    return ActivationRequest(
        account=account,
        passphrase=passphrase,
        totp=totp,
        incident=incident,
        reason=reason,
        holder_jwk=parse_holder_jwk(body.get("holder_jwk")),
        ttl_seconds=ttl,
        second_totp=second_totp,
    )
