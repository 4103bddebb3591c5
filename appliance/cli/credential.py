"""`appliance credential`: present a credential, and verify a presentation offline."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from appliance.cli.http import HttpError, request_json
from appliance.credentials.errors import CredentialError, CredentialFileError
from appliance.credentials.holder import present, read_credential_file
from appliance.credentials.verify import verify_presentation

EXIT_INVALID = 1


@click.group()
def credential() -> None:
    """Present and verify SD-JWT credentials."""


@credential.command("present")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--aud", required=True, help="Audience: the relying party that will verify.")
@click.option("--nonce", required=True, help="Nonce the relying party gave you.")
@click.option("--disclose", multiple=True, help="Disclose only this claim (repeatable; default: all).")
def present_command(file: Path, aud: str, nonce: str, disclose: tuple[str, ...]) -> None:
    """Print a presentation of the credential in FILE, with a key-binding JWT."""
    try:
        stored = read_credential_file(file)
    except CredentialFileError as error:
        raise click.ClickException(str(error)) from None
    presentation = present(
        stored.credential,
        stored.holder_key,
        aud=aud,
        nonce=nonce,
        now=int(time.time()),
        disclose=list(disclose) or None,
    )
    click.echo(presentation)


def well_known_metadata_url(issuer: str) -> str:
    """Insert `/.well-known/jwt-vc-issuer` between the host and the issuer's path."""
    parts = urlsplit(issuer)
    return urlunsplit((parts.scheme, parts.netloc, "/.well-known/jwt-vc-issuer" + parts.path, "", ""))


def fetch_issuer_jwks(issuer: str, cacert: str | None) -> dict[str, Any]:
    metadata = request_json("GET", well_known_metadata_url(issuer), cacert=cacert)
    if metadata.get("issuer") != issuer:
        raise click.ClickException(
            f"issuer metadata names {metadata.get('issuer')!r}, expected {issuer!r}"
        )
    if isinstance(metadata.get("jwks"), dict):
        jwks: dict[str, Any] = metadata["jwks"]
        return jwks
    jwks_uri = metadata.get("jwks_uri", "")
    if urlsplit(jwks_uri)[:2] != urlsplit(issuer)[:2]:
        raise click.ClickException(f"jwks_uri {jwks_uri!r} is not on the issuer's origin")
    fetched: dict[str, Any] = request_json("GET", jwks_uri, cacert=cacert)
    return fetched


@credential.command("verify")
@click.argument("presentation")
@click.option("--issuer", help="Expected issuer; its JWKS is fetched unless --jwks is given.")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Issuer JWKS file, for offline verification.")
@click.option("--aud", required=True, help="Expected audience of the key-binding JWT.")
@click.option("--nonce", required=True, help="Expected nonce of the key-binding JWT.")
@click.option("--leeway", type=click.IntRange(0, 300), default=30, show_default=True, help="Clock skew allowed, in seconds.")
@click.option("--cacert", type=click.Path(exists=True, dir_okay=False), help="CA bundle for fetching the issuer's keys.")
def verify_command(
    presentation: str,
    issuer: str | None,
    jwks_file: Path | None,
    aud: str,
    nonce: str,
    leeway: int,
    cacert: str | None,
) -> None:
    """Verify PRESENTATION (or `-` for standard input) and print its disclosed claims."""
    if issuer is None and jwks_file is None:
        raise click.UsageError("give --issuer URL or --jwks FILE")
    if presentation == "-":
        presentation = sys.stdin.read().strip()
    try:
        if jwks_file is not None:
            jwks = json.loads(jwks_file.read_text("utf-8"))
        else:
            assert issuer is not None
            jwks = fetch_issuer_jwks(issuer, cacert)
    except HttpError as error:
        raise click.ClickException(f"cannot fetch the issuer's keys: {error}") from None
    except ValueError as error:
        raise click.ClickException(f"{jwks_file} is not a JWKS JSON file: {error}") from None
    try:
        verified = verify_presentation(
            presentation,
            issuer_jwks=jwks,
            expected_issuer=issuer,
            expected_aud=aud,
            expected_nonce=nonce,
            now=int(time.time()),
            leeway=leeway,
        )
    except CredentialError as error:
        click.echo(f"invalid: {error.code}: {error}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(json.dumps(
        {
            "valid": True,
            "issuer": verified.issuer,
            "subject": verified.subject,
            "issued_at": verified.iat,
            "expires_at": verified.exp,
            "claims": verified.disclosed,
        },
        indent=2,
    ))
