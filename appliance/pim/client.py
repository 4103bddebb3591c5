"""A client of the PIM plane's JSON API for the CLI: stdlib only, so the CLI starts fast."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appliance.cli.http import request_json

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
    return request_json(method, url, body, cacert=cacert, token=token)


def api_url(url: str, org: str, path: str) -> str:
    return f"{url.rstrip('/')}/o/{quote(org, safe='')}/pim/{path}"
