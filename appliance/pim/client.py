"""A client of the PIM plane's JSON API for the CLI: stdlib only, so the CLI starts fast."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appliance import __version__
from appliance.cli.http import HttpError

TIMEOUT_SECONDS = 15
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredSession:
    """The session of `appliance pim login`, stored in a file with mode 0600."""

    url: str
    org: str
    username: str
    token: str
    expires_at: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(self.__dict__, indent=2).encode())
        finally:
            os.close(fd)
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> StoredSession:
        """Read a session file; raise ValueError with the path when it is missing or invalid."""
        try:
            data = json.loads(path.read_text("utf-8"))
            return cls(**{name: str(data[name]) for name in cls.__dataclass_fields__})
        except FileNotFoundError:
            raise ValueError(f"no PIM session in {path}: run `appliance pim login` first") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a PIM session file ({error}); sign in again") from None


def call(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    cacert: str | None = None,
) -> Any:
    """Send `body` as JSON, with a bearer token if given, and return the JSON response.

    Raise HttpError when the plane responds with an error or cannot be reached.
    """
    if not url.startswith(("http://", "https://")):
        raise HttpError(f"URL {url!r} must start with https:// (or http:// for a local appliance)")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked)
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", f"appliance-cli/{__version__}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=cacert) if cacert else None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as response:  # noqa: S310
            raw = response.read(MAX_RESPONSE_BYTES)
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read(MAX_RESPONSE_BYTES)
        try:
            payload = json.loads(raw)
            code, description = payload.get("error"), payload.get("error_description")
        except (ValueError, AttributeError):
            code, description = None, raw[:200].decode(errors="replace")
        raise HttpError(
            f"HTTP {error.code} {code or 'error'}: {description}", status=error.code, error=code
        ) from None
    except urllib.error.URLError as error:
        raise HttpError(f"cannot reach {url}: {error.reason}") from None
    except (TimeoutError, OSError) as error:
        raise HttpError(f"cannot reach {url}: {error}") from None
    except ValueError:
        raise HttpError(f"{url}: response is not JSON") from None


def api_url(url: str, org: str, path: str) -> str:
    return f"{url.rstrip('/')}/o/{quote(org, safe='')}/pim/{path}"
