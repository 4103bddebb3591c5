"""`appliance pim`: just-in-time elevation from a terminal.

`appliance pim login` stores a session token in a 0600 file (default under
the user's config folder, or `--session-file`); the other commands use it.
Every command takes `--json` for scripts. Exit codes: 1 when the plane
rejects the call (the message gives the reason), 3 when it cannot be reached.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import platformdirs

from appliance.cli.durations import Duration
from appliance.cli.http import HttpError
from appliance.credentials.errors import CredentialFileError
from appliance.credentials.holder import generate_holder_key, write_credential_file
from appliance.pim.client import StoredSession, api_url, call

EXIT_REJECTED = 1
EXIT_UNREACHABLE = 3
RELATIVE_START = re.compile(r"^\+(\d{1,6})([smhd])$")
RELATIVE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def default_session_file() -> Path:
    return Path(platformdirs.user_config_dir("appliance")) / "pim-session.json"


def _fail(error: HttpError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(EXIT_UNREACHABLE if error.status is None else EXIT_REJECTED)


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --session-file, --cacert and --json, and turn HttpError into an exit code."""

    @click.option(
        "--session-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="APPLIANCE_PIM_SESSION_FILE",
        help="Session file written by `appliance pim login` (default: in the user config folder).",
    )
    @click.option(
        "--cacert",
        type=click.Path(exists=True, dir_okay=False),
        help="CA bundle for the plane's TLS certificate.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the plane's JSON response.")
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HttpError as error:
            _fail(error)

    return wrapper


def _session(session_file: Path | None) -> StoredSession:
    try:
        return StoredSession.load(session_file or default_session_file())
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _api(
    session_file: Path | None, cacert: str | None, method: str, path: str, body: Any = None
) -> Any:
    session = _session(session_file)
    return call(
        method,
        api_url(session.url, session.org, f"api/{path}"),
        body,
        token=session.token,
        cacert=cacert,
    )


def _minutes(seconds: int) -> str:
    return f"{round(seconds / 60)} min" if seconds < 7200 else f"{seconds / 3600:g} h"


def _summary(item: dict[str, Any]) -> str:
    line = (
        f"{item['id']}  {item['role']} for {_minutes(item['duration_seconds'])}  "
        f"requested by {item['requester']}  state: {item['state']}"
    )
    if item["state"] == "pending":
        approvals = f"{item.get('approvals', 0)} of {item['approvals_required']} approvals"
        line += f" ({approvals}, expires {item['expires_at']})"
    grant = item.get("grant")
    if grant and item["state"] in ("active", "scheduled"):
        line += f" ({grant['starts_at']} to {grant['ends_at']})"
    if grant and grant.get("end_reason"):
        line += f" ({grant['end_reason']} by {grant['ended_by']})"
    return line


def _show(result: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(text if text is not None else _summary(result))


def parse_start(value: str | None, now: datetime) -> str | None:
    """Turn `+30m`, `+2h` or an RFC 3339 time into the RFC 3339 string the plane expects."""
    if value is None:
        return None
    relative = RELATIVE_START.match(value.strip())
    if relative:
        delta = timedelta(seconds=int(relative.group(1)) * RELATIVE_UNITS[relative.group(2)])
        return (now + delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use +30m, +2h or a time such as 2026-12-01T14:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset: add Z or +01:00")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def pim() -> None:
    """Privileged access on request: ask for a role, approve, obtain credentials."""


@pim.command()
@click.option("--url", required=True, envvar="APPLIANCE_PIM_URL", help="Base URL of the PIM plane.")
@click.option("--org", required=True, envvar="APPLIANCE_ORG", help="Org name.")
@click.option("--username", required=True, help="Your user name.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
@click.option("--totp", help="Current TOTP code (prompted when omitted).")
@_common
def login(
    url: str,
    org: str,
    username: str,
    password_stdin: bool,
    totp: str | None,
    session_file: Path | None,
    cacert: str | None,
    as_json: bool,
) -> None:
    """Sign in with password and TOTP; store the session token for the other commands."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: standard input has no password line")
    else:
        password = click.prompt("Password", hide_input=True)
    if totp is None:
        totp = click.prompt("TOTP code").strip()
    body = {"username": username, "password": password, "totp": totp}
    result = call("POST", api_url(url, org, "session"), body, cacert=cacert)
    path = session_file or default_session_file()
    StoredSession(url.rstrip("/"), org, username, result["token"], result["expires_at"]).save(path)
    shown = {key: value for key, value in result.items() if key != "token"}
    _show(
        shown | {"session_file": str(path)},
        as_json,
        f"signed in as {username} until {result['expires_at']}; session in {path}",
    )


@pim.command()
@_common
def logout(session_file: Path | None, cacert: str | None, as_json: bool) -> None:
    """End the stored session and delete its file."""
    session = _session(session_file)
    call("DELETE", api_url(session.url, session.org, "session"), token=session.token, cacert=cacert)
    (session_file or default_session_file()).unlink(missing_ok=True)
    _show({"signed_out": True}, as_json, "signed out")


@pim.command()
@_common
def roles(session_file: Path | None, cacert: str | None, as_json: bool) -> None:
    """List the roles you may request or approve, with their policies."""
    result = _api(session_file, cacert, "GET", "roles")
    lines = []
    for role in result["roles"]:
        policy = role["policy"]
        can = ", ".join(name for name in ("eligible", "approver") if role[name])
        lines.append(
            f"{role['name']}  ({can})  max {_minutes(policy['max_duration_seconds'])}, "
            f"{policy['approvals_required']} approvals"
        )
    _show(result, as_json, "\n".join(lines) or "no roles")


@pim.command("request")
@click.option("--role", required=True, help="Role to request.")
@click.option("--duration", type=Duration(), required=True, help="How long, e.g. 30m or 2h.")
@click.option("--reason", required=True, help="Justification, shown to approvers and recorded.")
@click.option("--ticket", help="Ticket or change reference.")
@click.option("--start", help="Start later: +30m, +2h or an RFC 3339 time (if the role allows it).")
@click.option("--totp", help="Current TOTP code, for roles that ask for a step-up.")
@_common
def request_command(
    role: str,
    duration: int,
    reason: str,
    ticket: str | None,
    start: str | None,
    totp: str | None,
    session_file: Path | None,
    cacert: str | None,
    as_json: bool,
) -> None:
    """Ask for ROLE for a while; approvers are notified."""
    body: dict[str, Any] = {"role": role, "duration_seconds": duration, "justification": reason}
    if ticket:
        body["ticket"] = ticket
    if start:
        body["start"] = parse_start(start, datetime.now(UTC))
    if totp:
        body["totp"] = totp
    _show(_api(session_file, cacert, "POST", "requests", body), as_json)


@pim.command("list")
@click.option("--pending", is_flag=True, help="Only requests still waiting for a decision.")
@_common
def list_command(
    pending: bool, session_file: Path | None, cacert: str | None, as_json: bool
) -> None:
    """List your requests and those you may decide, newest first."""
    result = _api(session_file, cacert, "GET", "requests?pending=true" if pending else "requests")
    text = "\n".join(_summary(item) for item in result["requests"]) or "no requests"
    _show(result, as_json, text)


@pim.command()
@click.argument("request_id")
@_common
def show(request_id: str, session_file: Path | None, cacert: str | None, as_json: bool) -> None:
    """Show one request with its decisions."""
    result = _api(session_file, cacert, "GET", f"requests/{request_id}")
    lines = [_summary(result), f"justification: {result['justification']}"]
    lines += [
        f"  {d['decision']} by {d['approver']} at {d['decided_at']}: {d['comment']}"
        for d in result["decisions"]
    ]
    _show(result, as_json, "\n".join(lines))


def _action(name: str, help_text: str, *, takes_comment: bool) -> None:
    def command(
        request_id: str,
        session_file: Path | None,
        cacert: str | None,
        as_json: bool,
        comment: str = "",
    ) -> None:
        body = {"comment": comment} if takes_comment else None
        _show(_api(session_file, cacert, "POST", f"requests/{request_id}/{name}", body), as_json)

    command.__doc__ = help_text
    decorated: Any = _common(command)
    if takes_comment:
        decorated = click.option(
            "--comment", default="", help="Comment recorded with the decision."
        )(decorated)
    pim.command(name)(click.argument("request_id")(decorated))


_action("approve", "Approve request REQUEST_ID (you cannot approve your own).", takes_comment=True)
_action("deny", "Deny request REQUEST_ID.", takes_comment=True)
_action("cancel", "Withdraw your pending request REQUEST_ID.", takes_comment=False)
_action(
    "revoke",
    "End the grant of REQUEST_ID now: approvers revoke, the requester relinquishes. "
    "Its credentials fail verification from then on.",
    takes_comment=True,
)


@pim.command("credential")
@click.argument("request_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credential file to write (mode 0600).",
)
@_common
def credential_command(
    request_id: str, out: Path | None, session_file: Path | None, cacert: str | None, as_json: bool
) -> None:
    """Obtain an SD-JWT credential for your active grant, bound to a new holder key."""
    holder_key = generate_holder_key()
    body = {"holder_jwk": holder_key.export_public(as_dict=True)}
    result = _api(session_file, cacert, "POST", f"requests/{request_id}/credential", body)
    path = out or Path(f"pim-{request_id[:8]}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json")
    try:
        write_credential_file(
            path,
            credential=result["credential"],
            holder_key=holder_key,
            issuer=result["issuer"],
            expires_at=result["expires_at"],
        )
    except CredentialFileError as error:
        raise click.ClickException(str(error)) from None
    expires = datetime.fromtimestamp(result["expires_at"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = {key: value for key, value in result.items() if key != "credential"} | {
        "file": str(path)
    }
    _show(
        shown,
        as_json,
        f"credential written to {path} (mode 0600)\n"
        f"issuer:  {result['issuer']}\nexpires: {expires}",
    )
