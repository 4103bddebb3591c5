"""A small JSON-over-HTTP client for the CLI (stdlib only, so the CLI starts fast)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from appliance import __version__

TIMEOUT_SECONDS = 15
MAX_RESPONSE_BYTES = 1024 * 1024


class HttpError(Exception):
    """The server answered with an error, or could not be reached."""

    def __init__(
        self, message: str, *, status: int | None = None, error: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


def _context(cacert: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=cacert) if cacert else None


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    cacert: str | None = None,
    token: str | None = None,
) -> Any:
    """Send `body` as JSON, with a bearer token if given, and return the decoded JSON
    response (None for an empty one), or raise `HttpError`."""
    if not url.startswith(("http://", "https://")):
        raise HttpError(f"URL {url!r} must start with https:// (or http:// for a local appliance)")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked above)
    req.add_header("Accept", "application/json")
    req.add_header("User-Agent", f"appliance-cli/{__version__}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS, context=_context(cacert)) as resp:  # noqa: S310
            raw = resp.read(MAX_RESPONSE_BYTES)
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read(MAX_RESPONSE_BYTES)
        try:
            payload = json.loads(raw)
            code, description = payload.get("error"), payload.get("error_description")
        except (ValueError, AttributeError):
            code, description = None, raw[:200].decode(errors="replace")
        retry_after = error.headers.get("Retry-After")
        if retry_after:
            description = f"{description} (retry after {retry_after} s)"
        raise HttpError(
            f"{url}: HTTP {error.code} {code or ''}: {description}".replace("  ", " "),
            status=error.code,
            error=code,
        ) from None
    except urllib.error.URLError as error:
        raise HttpError(f"cannot reach {url}: {error.reason}") from None
    except (TimeoutError, OSError) as error:
        raise HttpError(f"cannot reach {url}: {error}") from None
    except ValueError:
        raise HttpError(f"{url}: response is not JSON") from None
