"""Validation of PIM request bodies, with one clear error per field.

Policy rules (maximum duration, required justification or ticket, future
start) are checked later against the role's policy. This module checks only
what any valid body must satisfy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from appliance.breakglass.request import parse_holder_jwk
from appliance.errors import InvalidRequest
from appliance.pim.model import MIN_DURATION_SECONDS

ROLE_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
USERNAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MAX_JUSTIFICATION_CHARS: Final = 1000
MAX_TICKET_CHARS: Final = 128
MAX_COMMENT_CHARS: Final = 1000
MAX_PASSWORD_CHARS: Final = 1024
MAX_DURATION_SECONDS: Final = 7 * 24 * 3600


@dataclass(frozen=True)
class LoginBody:
    username: str
    password: str = field(repr=False)
    totp: str = field(repr=False)


@dataclass(frozen=True)
class ElevationBody:
    role: str
    duration_seconds: int
    justification: str
    ticket: str | None
    start: datetime | None
    totp: str | None = field(default=None, repr=False)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


def _string(body: dict[str, Any], name: str, *, max_chars: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise InvalidRequest(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRequest(f"{name} is empty")
    if len(value) > max_chars:
        raise InvalidRequest(f"{name} is longer than {max_chars} characters")
    if any(ord(char) < 32 and char not in "\t" for char in value):
        raise InvalidRequest(f"{name} contains control characters")
    return value


def _totp(value: str | None, name: str = "totp") -> str | None:
    if value is not None and not (len(value) == 6 and value.isascii() and value.isdigit()):
        raise InvalidRequest(f"{name} must be the six digits shown by the authenticator")
    return value


def parse_login(body: Any) -> LoginBody:
    body = _object(body)
    username = _string(body, "username", max_chars=63, required=True) or ""
    if not USERNAME_PATTERN.match(username):
        raise InvalidRequest(f"username {username!r} is not a valid user name")
    password = _string(body, "password", max_chars=MAX_PASSWORD_CHARS, required=True) or ""
    totp = _totp(_string(body, "totp", max_chars=16, required=True)) or ""
    return LoginBody(username, password, totp)


def parse_start(value: Any) -> datetime | None:
    """Accept an RFC 3339 time with an offset (`2026-12-01T14:00:00Z`) or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequest("start must be an RFC 3339 time or epoch seconds")
    if isinstance(value, int):
        if not 0 < value < 2**33:
            raise InvalidRequest(f"start={value} is out of range")
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidRequest("start must be an RFC 3339 time such as 2026-12-01T14:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"start {value!r} is not an RFC 3339 time such as 2026-12-01T14:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"start {value!r} has no UTC offset: add Z or +01:00")
    return parsed.astimezone(UTC)


def parse_elevation(body: Any) -> ElevationBody:
    body = _object(body)
    role = _string(body, "role", max_chars=63, required=True) or ""
    if not ROLE_PATTERN.match(role):
        raise InvalidRequest(f"role {role!r} is not a valid role name")
    duration = body.get("duration_seconds")
    if duration is None:
        raise InvalidRequest("duration_seconds is missing")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise InvalidRequest("duration_seconds must be an integer number of seconds")
    if not MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS:
        raise InvalidRequest(
            f"duration_seconds={duration} is out of range: "
            f"use {MIN_DURATION_SECONDS}..{MAX_DURATION_SECONDS}"
        )
    justification = _string(
        body, "justification", max_chars=MAX_JUSTIFICATION_CHARS, required=False
    )
    ticket = _string(body, "ticket", max_chars=MAX_TICKET_CHARS, required=False)
    totp = _totp(_string(body, "totp", max_chars=16, required=False))
    return ElevationBody(
        role=role,
        duration_seconds=duration,
        justification=(justification or "").strip(),
        ticket=ticket.strip() if ticket else None,
        start=parse_start(body.get("start")),
        totp=totp,
    )


def parse_comment(body: Any) -> str:
    """Return the optional `comment` of a decision or revocation; an empty body has none."""
    if body is None:
        return ""
    body = _object(body)
    return (_string(body, "comment", max_chars=MAX_COMMENT_CHARS, required=False) or "").strip()


def parse_holder(body: Any) -> dict[str, Any]:
    return parse_holder_jwk(_object(body).get("holder_jwk"))
