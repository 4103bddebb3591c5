"""HTTP client of the admin API for the CLI (stdlib only, so the CLI starts fast)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import click

from appliance import __version__

TIMEOUT_SECONDS = 30
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# Exit status when the admin plane cannot be reached, so scripts can retry.
EXIT_UNREACHABLE = 3


class ApiFailure(click.ClickException):
    """The admin API returned an error; the message contains its code and description."""

    def __init__(self, status: int, error: str | None, description: str) -> None:
        super().__init__(f"HTTP {status} {error or 'error'}: {description}")
        self.status = status
        self.error = error


class Unreachable(click.ClickException):
    exit_code = EXIT_UNREACHABLE


def path(*segments: str) -> str:
    """Join path segments, percent-encoding each one."""
    return "/".join(quote(segment, safe="") for segment in segments)


class AdminClient:
    def __init__(self, url: str, *, token: str | None = None, cacert: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise click.UsageError(
                f"URL {url!r} must start with https:// (or http:// for a local appliance)"
            )
        self.url = url.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=cacert) if cacert else None

    def _open(self, method: str, target: str, body: Any, query: dict[str, Any] | None) -> Any:
        url = f"{self.url}{target}"
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url = f"{url}?{urlencode(params)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", f"appliance-cli/{__version__}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=self.context)  # noqa: S310
        except urllib.error.HTTPError as error:
            raw = error.read(MAX_RESPONSE_BYTES)
            try:
                payload = json.loads(raw)
                code, description = payload.get("error"), payload.get("error_description", "")
            except (ValueError, AttributeError):
                code, description = None, raw[:200].decode(errors="replace")
            raise ApiFailure(error.code, code, description) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise Unreachable(f"cannot reach the admin plane at {self.url}: {reason}") from None

    def call(
        self, method: str, target: str, body: Any = None, *, query: dict[str, Any] | None = None
    ) -> Any:
        """Send a request and return the decoded JSON body (None for 204)."""
        with self._open(method, target, body, query) as response:
            raw = response.read(MAX_RESPONSE_BYTES)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise click.ClickException(f"{target}: the response is not JSON") from None

    def stream(self, target: str, *, query: dict[str, Any] | None = None) -> Iterator[bytes]:
        """Yield the raw response body of a GET in chunks (for JSON-lines exports)."""
        with self._open("GET", target, None, query) as response:
            while chunk := response.read(CHUNK_BYTES):
                yield chunk
