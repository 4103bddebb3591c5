"""Validation of admin API request bodies and query strings, one error per field.

Every body is a JSON object whose fields the handler declares. An unknown
field is rejected, so a typo (`max_ttl` for `max_ttl_seconds`) fails loudly
instead of being ignored. Each error names the field, the rule and,
where it helps, the value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from quart import request

from appliance.errors import InvalidRequest
from appliance.web.http import json_body

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ORG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
MAX_DISPLAY_NAME_CHARS = 200
# Passwords and passphrases chosen by operators: 12 characters at least, which
# with Argon2id and the lockout after five failures leaves online guessing hopeless.
MIN_SECRET_CHARS = 12
MAX_SECRET_CHARS = 1024


def _shown(value: str) -> str:
    return repr(value[:64] + ("..." if len(value) > 64 else ""))


class Body:
    """A JSON object body whose fields are read once each; `done()` rejects leftovers."""

    def __init__(self, raw: Any, *, allowed: set[str]) -> None:
        if not isinstance(raw, dict):
            raise InvalidRequest("request body must be a JSON object")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise InvalidRequest(
                f"unknown field {unknown[0][:64]!r}; allowed fields: {', '.join(sorted(allowed))}"
            )
        self.raw = raw

    def has(self, name: str) -> bool:
        return name in self.raw

    def _value(self, name: str, *, nullable: bool = False) -> Any:
        """Return the field's value; reject an explicit null unless the field is `nullable`."""
        value = self.raw.get(name)
        if value is None and name in self.raw and not nullable:
            raise InvalidRequest(f"{name} must not be null: omit the field to leave it unset")
        return value

    def string(
        self,
        name: str,
        *,
        max_chars: int,
        min_chars: int = 1,
        pattern: re.Pattern[str] | None = None,
        required: bool = True,
        default: str | None = None,
        nullable: bool = False,
    ) -> str | None:
        value = self._value(name, nullable=nullable)
        if value is None:
            if required:
                raise InvalidRequest(f"{name} is missing")
            return default
        if not isinstance(value, str):
            raise InvalidRequest(f"{name} must be a string, got {type(value).__name__}")
        return check_string(name, value, max_chars=max_chars, min_chars=min_chars, pattern=pattern)

    def required_string(self, name: str, **rules: Any) -> str:
        value = self.string(name, required=True, **rules)
        assert value is not None
        return value

    def integer(self, name: str, *, low: int, high: int, required: bool = False) -> int | None:
        value = self._value(name)
        if value is None:
            if required:
                raise InvalidRequest(f"{name} is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"{name} must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise InvalidRequest(f"{name}={value} is out of range: use {low}..{high}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self._value(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise InvalidRequest(f"{name} must be true or false, got {type(value).__name__}")
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self._value(name)
        if value is not None and not isinstance(value, dict):
            raise InvalidRequest(f"{name} must be a JSON object, got {type(value).__name__}")
        return value

    def string_list(
        self,
        name: str,
        *,
        max_items: int,
        max_chars: int,
        pattern: re.Pattern[str] | None = None,
        min_items: int = 0,
        required: bool = False,
    ) -> list[str] | None:
        value = self._value(name)
        if value is None:
            if required:
                raise InvalidRequest(f"{name} is missing")
            return None
        if not isinstance(value, list):
            raise InvalidRequest(f"{name} must be a list of strings, got {type(value).__name__}")
        if not min_items <= len(value) <= max_items:
            raise InvalidRequest(f"{name} has {len(value)} items: use {min_items} to {max_items}")
        items: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidRequest(f"{name}[{index}] must be a string, got {type(item).__name__}")
            items.append(
                check_string(f"{name}[{index}]", item, max_chars=max_chars, pattern=pattern)
            )
        if len(set(items)) != len(items):
            raise InvalidRequest(f"{name} contains a duplicate")
        return items


async def optional_json_body() -> Any:
    """Parse the JSON body, or return an empty object when the request has no body."""
    if not await request.get_data(as_text=False):
        return {}
    return await json_body()


def check_string(
    name: str,
    value: str,
    *,
    max_chars: int,
    min_chars: int = 1,
    pattern: re.Pattern[str] | None = None,
) -> str:
    if len(value) < min_chars:
        raise InvalidRequest(
            f"{name} is empty"
            if min_chars == 1
            else f"{name} is shorter than {min_chars} characters"
        )
    if len(value) > max_chars:
        raise InvalidRequest(f"{name} is longer than {max_chars} characters")
    if "\x00" in value:
        raise InvalidRequest(f"{name} contains a NUL character")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidRequest(f"{name} {_shown(value)} does not match {pattern.pattern}")
    return value


def secret(body: Body, name: str) -> str:
    """Read a password or passphrase chosen by an operator (12 to 1024 characters)."""
    return body.required_string(name, min_chars=MIN_SECRET_CHARS, max_chars=MAX_SECRET_CHARS)


def name_segment(kind: str, value: str) -> str:
    """Check a name from the URL path; a malformed one cannot exist, so raise `NotFound`."""
    from appliance.errors import NotFound

    if not NAME_PATTERN.fullmatch(value):
        raise NotFound(f"{kind} {_shown(value)} not found")
    return value


def query_time(args: Any, name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"query parameter {name}={_shown(raw)} is not an RFC 3339 time, "
            "e.g. 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"query parameter {name} needs a time zone, e.g. a trailing Z")
    return moment.astimezone(UTC)


def query_int(args: Any, name: str, *, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidRequest(f"query parameter {name}={_shown(raw)} is not a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidRequest(f"query parameter {name}={value} is out of range: use {low}..{high}")
    return value


def query_string(args: Any, name: str, *, max_chars: int = 200) -> str | None:
    raw = args.get(name)
    if raw is None:
        return None
    return check_string(f"query parameter {name}", raw, max_chars=max_chars)
