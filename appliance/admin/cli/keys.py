"""`appliance admin keys`: list, retire, revoke, and request a rotation."""

from __future__ import annotations

from typing import Any

import click

from appliance.admin.cli import admin
from appliance.admin.cli.context import Cli, admin_options
from appliance.cli.durations import Duration


@admin.group()
def keys() -> None:
    """Signing keys per plane of the session's org."""


def key_line(key: dict[str, Any]) -> str:
    return f"{key['plane']:<11} {key['kid']:<28} {key['status']:<8} created {key['created_at']}"


def rotation_line(request: dict[str, Any]) -> str:
    return (
        f"{request['id']} {request['plane']:<11} {request['status']:<9} requested "
        f"{request['requested_at']} by {request['requested_by']}"
        + (f", new key {request['new_kid']}" if request["new_kid"] else "")
    )


@keys.command("list")
@click.option(
    "--plane",
    type=click.Choice(["auth", "admin", "pim", "breakglass"]),
    help="Only this plane's keys.",
)
@admin_options
def keys_list(cli: Cli, plane: str | None) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("keys"), query={"plane": plane}),
        lambda r: "\n".join(key_line(k) for k in r["keys"]) or "no keys yet",
    )


@keys.command("retire")
@click.argument("kid")
@click.option(
    "--publish-for",
    type=Duration(),
    help="Keep the key in the JWKS this long, e.g. 24h (default 24h).",
)
@admin_options
def keys_retire(cli: Cli, kid: str, publish_for: int | None) -> None:
    """Stop signing with a key; keep publishing it while its tokens live."""
    body = {"publish_seconds": publish_for} if publish_for is not None else {}
    cli.emit(
        cli.client.call("POST", cli.org_path("keys", kid, "retire"), body),
        lambda r: key_line(r["key"]),
    )


@keys.command("revoke")
@click.argument("kid")
@admin_options
def keys_revoke(cli: Cli, kid: str) -> None:
    """Withdraw a key from the JWKS at once (a compromised key)."""
    cli.emit(
        cli.client.call("POST", cli.org_path("keys", kid, "revoke")), lambda r: key_line(r["key"])
    )


@keys.command("rotate")
@click.argument("plane", type=click.Choice(["auth", "pim", "breakglass"]))
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@admin_options
def keys_rotate(cli: Cli, plane: str, reason: str) -> None:
    """Request that PLANE rotate its signing key now; its rotation job performs it."""
    result = cli.client.call(
        "POST", cli.org_path("keys", "rotation-requests"), {"plane": plane, "reason": reason}
    )
    cli.emit(
        result,
        lambda r: (
            ("already pending: " if r["rotation_request"]["already_pending"] else "requested: ")
            + rotation_line(r["rotation_request"])
        ),
    )


@keys.command("rotation-requests")
@admin_options
def keys_rotation_requests(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("keys", "rotation-requests")),
        lambda r: "\n".join(rotation_line(x) for x in r["rotation_requests"]) or "none",
    )
