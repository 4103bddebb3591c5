"""Request parsing that turns bad input into a clear 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any

from quart import request

from appliance.errors import InvalidRequest, UnsupportedMediaType

# Bodies above this are rejected by Quart before they are read (MAX_CONTENT_LENGTH).
MAX_BODY_BYTES = 64 * 1024


async def json_body() -> Any:
    """Parse the request body as JSON, with an error that says what is wrong."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"content type {request.mimetype or 'none'!r} is not supported: send application/json"
        )
    raw = await request.get_data(as_text=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRequest(f"request body is not valid JSON: {error.msg} at position {error.pos}") from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply") from None
