"""Request parsing that turns bad input into a clear 4xx, never a 500."""

from __future__ import annotations

import json
from ipaddress import ip_address
from typing import Any

from quart import current_app, request

from appliance.errors import InvalidRequest, UnsupportedMediaType
from appliance.settings import Settings

# Bodies above this are rejected by Quart before they are read (MAX_CONTENT_LENGTH).
MAX_BODY_BYTES = 64 * 1024


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"request body contains {name}, which is not JSON: send a number")


async def json_body() -> Any:
    """Parse the request body as JSON, raising InvalidRequest that names the problem."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"content type {request.mimetype or 'none'!r} is not supported: send application/json"
        )
    raw: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise InvalidRequest(
            f"request body is not valid JSON: {error.msg} at position {error.pos}"
        ) from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply") from None


def client_address() -> str:
    """Return the client's address: the peer, or, behind a trusted proxy, the nearest
    untrusted address in `X-Forwarded-For` (read from the right, because the
    left part is whatever the client chose to send)."""
    settings: Settings = current_app.config["SETTINGS"]
    peer = request.remote_addr or "unknown"
    if not settings.trusted_proxies or not _trusted(peer, settings):
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, settings):
            return hop
    return peer


def _trusted(address: str, settings: Settings) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in settings.trusted_proxies)
