"""`appliance demo`: helpers for the demo org that `appliance up` seeds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from appliance.identity.totp import STEP_SECONDS, code_at
from appliance.local import DataDir, default_data_dir


@click.group()
def demo() -> None:
    """The demo org of a local `appliance up`."""


def load_demo(data_dir: Path | None) -> dict[str, Any]:
    data = DataDir((data_dir or default_data_dir()).resolve())
    try:
        loaded: dict[str, Any] = json.loads(data.demo_credentials.read_text("utf-8"))
    except FileNotFoundError:
        raise click.ClickException(
            f"{data.demo_credentials} not found: run `appliance up` first (or pass --data-dir)"
        ) from None
    return loaded


@demo.command("totp")
@click.argument("identity", default="breakglass")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of `appliance up`.",
)
def totp_command(identity: str, data_dir: Path | None) -> None:
    """Print the current TOTP code of a demo IDENTITY (default: the break-glass account).

    A code is accepted once; wait for the next 30-second step to use another.
    """
    secrets_by_identity = load_demo(data_dir)
    entry = secrets_by_identity.get(identity)
    if not isinstance(entry, dict) or "totp_secret" not in entry:
        names = ", ".join(
            k for k, v in secrets_by_identity.items() if isinstance(v, dict) and "totp_secret" in v
        )
        raise click.ClickException(
            f"no demo identity {identity!r} with a TOTP secret; known: {names}"
        )
    click.echo(code_at(entry["totp_secret"], int(time.time() // STEP_SECONDS)))


@demo.command("passphrase")
@click.argument("identity", default="breakglass")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of `appliance up`.",
)
def passphrase_command(identity: str, data_dir: Path | None) -> None:
    """Print the passphrase (or password) of a demo IDENTITY, for `--passphrase-stdin`."""
    entry = load_demo(data_dir).get(identity)
    secret = entry.get("passphrase", entry.get("password")) if isinstance(entry, dict) else None
    if not isinstance(secret, str):
        raise click.ClickException(f"no demo identity {identity!r} with a passphrase or password")
    click.echo(secret)
