"""`appliance admin breakglass`: accounts, passphrases, custodians and lifetimes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from appliance.admin.cli import admin
from appliance.admin.cli.context import Cli, admin_options, read_secret_line
from appliance.cli.durations import Duration
from appliance.local import write_private


@admin.group("breakglass")
def breakglass_group() -> None:
    """Break-glass accounts of the session's org."""


def account_text(result: dict[str, Any]) -> str:
    account = result["account"]
    state = "enabled"
    if account["disabled"]:
        state = "disabled"
    elif account["locked"]:
        state = "locked"
    custodians = ", ".join(c["name"] for c in account["custodians"]) or "none"
    lines = [
        f"{account['name']}: {state}, role {account['role']}, lifetime "
        f"{account['default_ttl_seconds']}s (max {account['max_ttl_seconds']}s), custodians "
        f"{custodians} ({account['custodians_required']} required), last activated "
        f"{account['last_activated_at'] or 'never'}"
    ]
    for activation in account.get("recent_activations", []):
        lines.append(
            f"  {activation['occurred_at']} {activation['outcome']} "
            f"{activation['failure_reason'] or ''} {activation['incident'] or ''}".rstrip()
        )
    return "\n".join(lines)


def custodian_text(enrolled: list[dict[str, Any]], qr_dir: Path | None) -> str:
    lines = []
    for custodian in enrolled:
        lines.append(
            f"custodian {custodian['position']} {custodian['name']}: TOTP provisioning URI "
            f"(shown once, give it to this custodian only): {custodian['totp']['provisioning_uri']}"
        )
        if qr_dir is not None:
            out = qr_dir / f"{custodian['name']}.png"
            write_private(out, base64.b64decode(custodian["totp"]["qr_png_base64"]))
            lines.append(f"  QR code written to {out}")
    return "\n".join(lines)


QR_DIR = click.option(
    "--qr-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each custodian's TOTP QR code to DIR/<custodian>.png (0600).",
)


@breakglass_group.command("list")
@admin_options
def bg_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("breakglass", "accounts"), query={"limit": 1000}),
        lambda r: "\n".join(
            f"{a['name']:<20} {'disabled' if a['disabled'] else 'enabled':<9} "
            f"custodians {','.join(a['custodians'])} last {a['last_activated_at'] or 'never'}"
            for a in r["accounts"]
        ),
    )


@breakglass_group.command("show")
@click.argument("name")
@admin_options
def bg_show(cli: Cli, name: str) -> None:
    """Show an account with its recent activations."""
    cli.emit(cli.client.call("GET", cli.org_path("breakglass", "accounts", name)), account_text)


@breakglass_group.command("create")
@click.argument("name")
@click.option("--role", required=True, help="Role the credential grants, e.g. breakglass-admin.")
@click.option(
    "--custodian",
    "custodians",
    multiple=True,
    required=True,
    help="Custodian name; give it once or twice (two-person rule).",
)
@click.option(
    "--passphrase-stdin",
    is_flag=True,
    required=True,
    help="Read the account passphrase from the first line of standard input.",
)
@click.option("--default-ttl", type=Duration(), help="Default credential lifetime, e.g. 15m.")
@click.option("--max-ttl", type=Duration(), help="Maximum credential lifetime, at most 1h.")
@QR_DIR
@admin_options
def bg_create(
    cli: Cli,
    name: str,
    role: str,
    custodians: tuple[str, ...],
    passphrase_stdin: bool,
    default_ttl: int | None,
    max_ttl: int | None,
    qr_dir: Path | None,
) -> None:
    """Create an account; each custodian gets its own TOTP seed, shown once."""
    body: dict[str, Any] = {
        "name": name,
        "role": role,
        "custodians": list(custodians),
        "passphrase": read_secret_line("passphrase"),
    }
    if default_ttl is not None:
        body["default_ttl_seconds"] = default_ttl
    if max_ttl is not None:
        body["max_ttl_seconds"] = max_ttl
    result = cli.client.call("POST", cli.org_path("breakglass", "accounts"), body)
    cli.emit(result, lambda r: account_text(r) + "\n" + custodian_text(r["custodians"], qr_dir))
    if cli.as_json and qr_dir is not None:
        custodian_text(result["custodians"], qr_dir)


@breakglass_group.command("set-passphrase")
@click.argument("name")
@click.option(
    "--passphrase-stdin",
    is_flag=True,
    required=True,
    help="Read the new passphrase from the first line of standard input.",
)
@admin_options
def bg_passphrase(cli: Cli, name: str, passphrase_stdin: bool) -> None:
    body = {"passphrase": read_secret_line("passphrase")}
    cli.emit(
        cli.client.call("PUT", cli.org_path("breakglass", "accounts", name, "passphrase"), body),
        lambda r: f"passphrase of {name} set",
    )


@breakglass_group.command("add-custodian")
@click.argument("name")
@click.argument("custodian")
@QR_DIR
@admin_options
def bg_add_custodian(cli: Cli, name: str, custodian: str, qr_dir: Path | None) -> None:
    """Enroll a custodian, or give an existing one a new TOTP seed."""
    result = cli.client.call(
        "POST", cli.org_path("breakglass", "accounts", name, "custodians"), {"name": custodian}
    )
    cli.emit(result, lambda r: account_text(r) + "\n" + custodian_text([r["custodian"]], qr_dir))
    if cli.as_json and qr_dir is not None:
        custodian_text([result["custodian"]], qr_dir)


@breakglass_group.command("update")
@click.argument("name")
@click.option("--role", help="New role.")
@click.option("--default-ttl", type=Duration(), help="Default credential lifetime, e.g. 15m.")
@click.option("--max-ttl", type=Duration(), help="Maximum credential lifetime, at most 1h.")
@click.option(
    "--custodians-required",
    type=click.IntRange(1, 2),
    help="How many custodians must give a TOTP code.",
)
@admin_options
def bg_update(
    cli: Cli,
    name: str,
    role: str | None,
    default_ttl: int | None,
    max_ttl: int | None,
    custodians_required: int | None,
) -> None:
    """Change role, lifetimes or the number of required custodians."""
    body = {
        k: v
        for k, v in {
            "role": role,
            "default_ttl_seconds": default_ttl,
            "max_ttl_seconds": max_ttl,
            "custodians_required": custodians_required,
        }.items()
        if v is not None
    }
    cli.emit(
        cli.client.call("PATCH", cli.org_path("breakglass", "accounts", name), body), account_text
    )


def _account_action(action: str, help_text: str) -> None:
    @breakglass_group.command(action, help=help_text)
    @click.argument("name")
    @admin_options
    def command(cli: Cli, name: str) -> None:
        cli.emit(
            cli.client.call("POST", cli.org_path("breakglass", "accounts", name, action)),
            account_text,
        )


_account_action("disable", "Disable an account: activations fail until it is enabled.")
_account_action("enable", "Enable a disabled account.")
_account_action("unlock", "Clear an account's lockout after failed activations.")
