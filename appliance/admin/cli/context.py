"""Shared state of `appliance admin` commands: session file, client and output.

`appliance admin login` stores the session token with the plane's URL and
org in a file of mode 0600 (default: the user's state directory, or
`APPLIANCE_ADMIN_SESSION_FILE`). Every other command reads it; `--url`
overrides the URL. `--json` prints the API's JSON response unchanged, for
scripts; without it a command prints a short summary.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import platformdirs

from appliance.admin.cli.client import AdminClient, path
from appliance.local import write_private

F = TypeVar("F", bound=Callable[..., Any])


def default_session_file() -> Path:
    configured = os.environ.get("APPLIANCE_ADMIN_SESSION_FILE")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_state_dir("appliance")) / "admin-session.json"


@dataclass
class Session:
    url: str
    org: str
    username: str
    token: str
    expires_at: str

    def save(self, file: Path) -> None:
        write_private(file, (json.dumps(self.__dict__, indent=2) + "\n").encode())

    @classmethod
    def load(cls, file: Path) -> Session:
        try:
            data = json.loads(file.read_text("utf-8"))
            return cls(**{k: data[k] for k in ("url", "org", "username", "token", "expires_at")})
        except FileNotFoundError:
            raise click.ClickException(
                f"no admin session in {file}: run `appliance admin login` first"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise click.ClickException(
                f"cannot read the admin session file {file}: {error}; log in again"
            ) from None


@dataclass
class Cli:
    session: Session
    client: AdminClient
    as_json: bool

    def org_path(self, *segments: str) -> str:
        return "/admin/v1/orgs/" + path(self.session.org, *segments)

    def emit(self, payload: Any, summary: Callable[[Any], str] | None = None) -> None:
        if self.as_json or summary is None:
            click.echo(json.dumps(payload, indent=2, sort_keys=True))
        else:
            click.echo(summary(payload))


def admin_options(function: F) -> F:
    """Add --url, --session-file, --cacert and --json, and pass a `Cli` as `cli`."""

    @click.option("--json", "as_json", is_flag=True, help="Print the API's JSON response.")
    @click.option(
        "--cacert",
        type=click.Path(exists=True, dir_okay=False),
        help="CA bundle for the admin plane's TLS certificate.",
    )
    @click.option(
        "--url",
        envvar="APPLIANCE_ADMIN_URL",
        help="Base URL of the admin plane (default: the one of the session).",
    )
    @click.option(
        "--session-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Session file written by `appliance admin login`.",
    )
    @functools.wraps(function)
    def wrapper(
        *args: Any,
        as_json: bool,
        cacert: str | None,
        url: str | None,
        session_file: Path | None,
        **kwargs: Any,
    ) -> Any:
        session = Session.load(session_file or default_session_file())
        client = AdminClient(url or session.url, token=session.token, cacert=cacert)
        return function(*args, cli=Cli(session, client, as_json), **kwargs)

    return wrapper  # type: ignore[return-value]


def read_secret_line(what: str) -> str:
    """Read one secret from the first line of standard input."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.UsageError(f"standard input has no {what} line")
    return line


def write_qr(totp: dict[str, str], out: Path | None) -> str:
    """Write the enrollment QR PNG to `out` (mode 0600); return a line saying where."""
    if out is None:
        return ""
    write_private(out, base64.b64decode(totp["qr_png_base64"]))
    return f"\nQR code written to {out}"
