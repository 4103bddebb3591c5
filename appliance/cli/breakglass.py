"""`appliance breakglass`: emergency activation from a terminal."""

from __future__ import annotations

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


@breakglass.command()
@click.option("--url", required=True, envvar="APPLIANCE_BREAKGLASS_URL", help="Base URL of the break-glass plane.")
@click.option("--org", required=True, help="Org name.")
@click.option("--account", required=True, help="Break-glass account name.")
@click.option("--incident", required=True, help="Incident or ticket id, e.g. INC-4711.")
@click.option("--reason", required=True, help="Why emergency access is needed (recorded in the audit trail).")
@click.option("--ttl", type=Duration(), default=None, help="Credential lifetime, e.g. 15m (default: the account's, at most 1h).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Credential file to write (mode 0600).")
@click.option("--totp", help="Current TOTP code (prompted when omitted).")
@click.option("--passphrase-stdin", is_flag=True, help="Read the passphrase from the first line of standard input.")
@click.option("--cacert", type=click.Path(exists=True, dir_okay=False), help="CA bundle for the plane's TLS certificate.")
def activate(
    url: str,
    org: str,
    account: str,
    incident: str,
    reason: str,
    ttl: int | None,
    out: Path | None,
    totp: str | None,
    passphrase_stdin: bool,
    cacert: str | None,
) -> None:
    """Activate a break-glass account and save the credential with its holder key."""
    if passphrase_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
        if not passphrase:
            raise click.UsageError("--passphrase-stdin: standard input has no passphrase line")
    else:
        passphrase = click.prompt("Passphrase", hide_input=True)
    if totp is None:
        totp = click.prompt("TOTP code").strip()
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
    endpoint = f"{url.rstrip('/')}/o/{org}/breakglass/activate"
    try:
        result = request_json("POST", endpoint, body, cacert=cacert)
    except HttpError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_UNREACHABLE if error.status is None else EXIT_REJECTED)
    path = out or _default_out(org, account)
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
    if result.get("ttl_capped"):
        click.echo(f"note: lifetime capped at the account's maximum of {result['ttl_seconds'] // 60} min")
