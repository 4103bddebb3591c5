"""`appliance breakglass`: emergency activation from a terminal."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from appliance.cli.durations import Duration
from appliance.cli.http import HttpError, request_json
from appliance.credentials.errors import CredentialFileError
from appliance.credentials.holder import generate_holder_key, write_credential_file

# Exit codes an on-call script can branch on.
EXIT_REJECTED = 1
EXIT_UNREACHABLE = 3


@click.group()
def breakglass() -> None:
    """Emergency access."""


def _default_out(org: str, account: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"breakglass-{org}-{account}-{stamp}.json")


def _check_writable(path: Path) -> None:
    """Fail before activating if the credential could not be saved: an activation
    uses a TOTP code and is audited, so it must not be wasted on a bad path."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise click.UsageError(f"--out: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.UsageError(f"--out: folder {folder} is not writable")


@breakglass.command()
@click.option(
    "--url",
    required=True,
    envvar="APPLIANCE_BREAKGLASS_URL",
    help="Base URL of the break-glass plane.",
)
@click.option("--org", required=True, help="Org name.")
@click.option("--account", required=True, help="Break-glass account name.")
@click.option("--incident", required=True, help="Incident or ticket id, e.g. INC-4711.")
@click.option(
    "--reason", required=True, help="Why emergency access is needed (recorded in the audit trail)."
)
@click.option(
    "--ttl",
    type=Duration(),
    default=None,
    help="Credential lifetime, e.g. 15m (default: the account's, at most 1h).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credential file to write (mode 0600).",
)
@click.option("--totp", help="Current TOTP code (prompted when omitted).")
@click.option(
    "--second-totp",
    help="Second custodian's TOTP code, for accounts under the two-person rule "
    "(prompted when --two-person is given without it).",
)
@click.option("--two-person", is_flag=True, help="The account needs a second custodian's code.")
@click.option(
    "--passphrase-stdin",
    is_flag=True,
    help="Read the passphrase from the first line of standard input.",
)
@click.option(
    "--cacert",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle for the plane's TLS certificate.",
)
def activate(
    url: str,
    org: str,
    account: str,
    incident: str,
    reason: str,
    ttl: int | None,
    out: Path | None,
    totp: str | None,
    second_totp: str | None,
    two_person: bool,
    passphrase_stdin: bool,
    cacert: str | None,
) -> None:
    """Activate a break-glass account and save the credential with its holder key."""
    path = out or _default_out(org, account)
    _check_writable(path)
    if passphrase_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
        if not passphrase:
            raise click.UsageError("--passphrase-stdin: standard input has no passphrase line")
    else:
        passphrase = click.prompt("Passphrase", hide_input=True)
    if totp is None:
        totp = click.prompt("TOTP code").strip()
    if two_person and second_totp is None:
        second_totp = click.prompt("Second custodian's TOTP code").strip()
    holder_key = generate_holder_key()
    body = {
        "account": account,
        "passphrase": passphrase,
        "totp": totp,
        "incident": incident,
        "reason": reason,
        "holder_jwk": holder_key.export_public(as_dict=True),
    }
    if ttl is not None:
        body["ttl_seconds"] = ttl
    if second_totp is not None:
        body["second_totp"] = second_totp
    endpoint = f"{url.rstrip('/')}/o/{org}/breakglass/activate"
    try:
        result = request_json("POST", endpoint, body, cacert=cacert)
    except HttpError as error:
        click.echo(f"error: {error}", err=True)
        if error.status == 404:
            click.echo(
                "hint: check --org, and that --url is the break-glass plane "
                "(port 8404 under `appliance up`)",
                err=True,
            )
        sys.exit(EXIT_UNREACHABLE if error.status is None else EXIT_REJECTED)
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
    expires = datetime.fromtimestamp(result["expires_at"], UTC)
    minutes = max(0, round((result["expires_at"] - time.time()) / 60))
    click.echo(f"credential written to {path} (mode 0600)")
    click.echo(f"issuer:  {result['issuer']}")
    click.echo(f"expires: {expires.strftime('%Y-%m-%d %H:%M:%S')} UTC (in {minutes} min)")
    if result.get("degraded"):
        click.echo("note: issued in degraded mode (database unreachable, served from the snapshot)")
    if result.get("ttl_capped"):
        click.echo(
            f"note: lifetime capped at the account's maximum of {result['ttl_seconds'] // 60} min"
        )
