"""Parsing of OAuth request parameters, with size limits checked before parsing.

RFC 6749 section 3.1 forbids a parameter to appear more than once, and a
parameter sent without a value counts as omitted. `resource` (RFC 8707) is the only
parameter that may repeat. Every parameter has a length limit, so a client
cannot make the server hash, store or log megabytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from quart import request
from werkzeug.exceptions import RequestEntityTooLarge

from appliance.oidc.errors import InvalidRequest

# A token request carries at most a client assertion (MAX_JWT_BYTES) and a
# few short parameters; 16 KiB leaves room and bounds the parsing work.
MAX_FORM_BYTES = 16 * 1024
MAX_QUERY_BYTES = 8 * 1024
MAX_FIELDS = 32
REPEATABLE = frozenset({"resource"})

# Longest accepted value per parameter; anything not listed gets DEFAULT_MAX_CHARS.
MAX_CHARS = {
    "client_assertion": 8192,
    "id_token_hint": 8192,
    "token": 8192,
    "redirect_uri": 2048,
    "post_logout_redirect_uri": 2048,
    "resource": 2048,
    "state": 1024,
    "scope": 1024,
    "nonce": 512,
    "password": 1024,
    "authorize": MAX_QUERY_BYTES,
}
DEFAULT_MAX_CHARS = 256


class Params:
    """Decoded parameters: single values by name, plus the repeatable `resource` list."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        self.resources: list[str] = []
        for name, value in pairs:
            limit = MAX_CHARS.get(name, DEFAULT_MAX_CHARS)
            if len(value) > limit:
                raise InvalidRequest(f"parameter {name[:40]!r} is longer than {limit} characters")
            if value == "":
                continue
            if name in REPEATABLE:
                self.resources.append(value)
                continue
            if name in self._values:
                raise InvalidRequest(f"parameter {name[:40]!r} is repeated; send it once")
            self._values[name] = value

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def require(self, name: str) -> str:
        value = self._values.get(name)
        if value is None:
            raise InvalidRequest(f"parameter {name!r} is missing")
        return value

    def __contains__(self, name: str) -> bool:
        return name in self._values


def parse_urlencoded(raw: bytes, *, limit: int) -> Params:
    """Decode `application/x-www-form-urlencoded` bytes of at most `limit` bytes."""
    if len(raw) > limit:
        raise InvalidRequest(f"request parameters exceed {limit} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("request parameters are not valid UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except ValueError:
        raise InvalidRequest(
            f"request has more than {MAX_FIELDS} parameters, or a parameter that is not valid UTF-8"
        ) from None
    return Params(pairs)


async def form_params() -> Params:
    """Parse the POST body of a token, introspection or revocation request."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequest(
            f"content type {request.mimetype or 'none'!r} is not supported: "
            "send application/x-www-form-urlencoded"
        )
    length = request.content_length
    if length is not None and length > MAX_FORM_BYTES:
        raise InvalidRequest(f"request body of {length} bytes exceeds {MAX_FORM_BYTES} bytes")
    try:
        raw: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
    except RequestEntityTooLarge:
        raise InvalidRequest(f"request body exceeds {MAX_FORM_BYTES} bytes") from None
    return parse_urlencoded(raw, limit=MAX_FORM_BYTES)


def query_params() -> Params:
    """Parse the query string of an authorization or logout request."""
    return parse_urlencoded(request.query_string, limit=MAX_QUERY_BYTES)
