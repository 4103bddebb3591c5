"""`appliance credential`: present a credential, and verify a presentation offline."""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from appliance.cli.http import HttpError, request_json
from appliance.credentials.errors import CredentialError, CredentialFileError
from appliance.credentials.holder import present, read_credential_file
from appliance.credentials.status_list import (
    MAX_TOKEN_LENGTH,
    STATUS_LIST_TYP,
    check_status,
    verify_status_list_token,
)
from appliance.credentials.verify import VerifiedCredential, verify_presentation

EXIT_INVALID = 1


@click.group()
def credential() -> None:
    """Present and verify SD-JWT credentials."""


@credential.command("present")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--aud", required=True, help="Audience: the relying party that will verify.")
@click.option("--nonce", required=True, help="Nonce the relying party gave you.")
@click.option(
    "--disclose", multiple=True, help="Disclose only this claim (repeatable; default: all)."
)
def present_command(file: Path, aud: str, nonce: str, disclose: tuple[str, ...]) -> None:
    """Print a presentation of the credential in FILE, with a key-binding JWT."""
    try:
        stored = read_credential_file(file)
    except CredentialFileError as error:
        raise click.ClickException(str(error)) from None
    try:
        presentation = present(
            stored.credential,
            stored.holder_key,
            aud=aud,
            nonce=nonce,
            now=int(time.time()),
            disclose=list(disclose) or None,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(presentation)


def well_known_metadata_url(issuer: str) -> str:
    """Insert `/.well-known/jwt-vc-issuer` between the host and the issuer's path."""
    parts = urlsplit(issuer)
    return urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/jwt-vc-issuer" + parts.path, "", "")
    )


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


def fetch_status_list_token(uri: str, issuer: str, cacert: str | None) -> str:
    """Fetch the status list token at `uri`, which must be on the credential issuer's origin."""
    if urlsplit(uri)[:2] != urlsplit(issuer)[:2]:
        raise CredentialError(
            "status_uri_mismatch", f"status list {uri!r} is not on the issuer's origin {issuer!r}"
        )
    accept = {"Accept": f"application/{STATUS_LIST_TYP}"}
    request = urllib.request.Request(uri, headers=accept)  # noqa: S310 (origin checked above)
    context = ssl.create_default_context(cafile=cacert) if cacert else None
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:  # noqa: S310
            raw: bytes = response.read(MAX_TOKEN_LENGTH + 1)
    except (urllib.error.URLError, OSError) as error:
        raise CredentialError(
            "status_unavailable", f"cannot fetch the status list {uri}: {error}"
        ) from None
    return raw.decode("ascii", errors="replace").strip()


def check_credential_status(
    verified: VerifiedCredential,
    jwks: dict[str, Any],
    *,
    status_list_file: Path | None,
    cacert: str | None,
    leeway: int,
) -> bool:
    """Check `status.status_list` of a verified credential; return False when it has none.

    Raise CredentialError (for example `status_revoked`) when the entry is not valid or
    the status list token fails verification with the issuer's keys.
    """
    reference = (verified.status or {}).get("status_list")
    if reference is None:
        return False
    uri = reference.get("uri") if isinstance(reference, dict) else None
    if not isinstance(uri, str):
        raise CredentialError("status_missing", "status.status_list has no uri")
    if status_list_file is not None:
        token = status_list_file.read_text("utf-8").strip()
    else:
        token = fetch_status_list_token(uri, verified.issuer, cacert)
    status_list = verify_status_list_token(
        token,
        issuer_jwks=jwks,
        expected_uri=uri,
        now=int(time.time()),
        expected_issuer=verified.issuer,
        leeway=leeway,
    )
    check_status(verified, status_list)
    return True


@credential.command("verify")
@click.argument("presentation")
@click.option("--issuer", help="Expected issuer; its JWKS is fetched unless --jwks is given.")
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Issuer JWKS file, for offline verification.",
)
@click.option("--aud", required=True, help="Expected audience of the key-binding JWT.")
@click.option("--nonce", required=True, help="Expected nonce of the key-binding JWT.")
@click.option(
    "--leeway",
    type=click.IntRange(0, 300),
    default=30,
    show_default=True,
    help="Clock skew allowed, in seconds.",
)
@click.option(
    "--cacert",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle for fetching the issuer's keys.",
)
@click.option(
    "--status-list",
    "status_list_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Status list token file, for offline revocation checks "
    "(default: fetch it from the credential's status uri).",
)
def verify_command(
    presentation: str,
    issuer: str | None,
    jwks_file: Path | None,
    aud: str,
    nonce: str,
    leeway: int,
    cacert: str | None,
    status_list_file: Path | None,
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
        status_checked = check_credential_status(
            verified, jwks, status_list_file=status_list_file, cacert=cacert, leeway=leeway
        )
    except CredentialError as error:
        click.echo(f"invalid: {error}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(
        json.dumps(
            {
                "valid": True,
                "issuer": verified.issuer,
                "subject": verified.subject,
                "issued_at": verified.iat,
                "expires_at": verified.exp,
                "claims": verified.disclosed,
                **({"status": "valid"} if status_checked else {}),
            },
            indent=2,
        )
    )
