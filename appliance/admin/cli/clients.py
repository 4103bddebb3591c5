"""`appliance admin clients`: OAuth clients of the auth plane."""

from __future__ import annotations

from typing import Any

import click

from appliance.admin.cli import admin
from appliance.admin.cli.context import Cli, admin_options
from appliance.cli.durations import Duration


@admin.group()
def clients() -> None:
    """OAuth clients of the session's org."""


def client_text(result: dict[str, Any]) -> str:
    client = result["client"]
    lines = [
        f"{client['client_id']}: {client['client_type']}, {client['token_endpoint_auth_method']}, "
        f"grants {', '.join(client['grant_types'])}" + (", disabled" if client["disabled"] else ""),
        f"  redirect URIs: {', '.join(client['redirect_uris']) or '-'}",
    ]
    if "client_secret" in result:
        lines.append(f"client secret (shown once): {result['client_secret']}")
    return "\n".join(lines)


@clients.command("list")
@admin_options
def clients_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("clients"), query={"limit": 1000}),
        lambda r: "\n".join(client_text({"client": c}) for c in r["clients"]) or "no clients",
    )


@clients.command("show")
@click.argument("client_id")
@admin_options
def clients_show(cli: Cli, client_id: str) -> None:
    cli.emit(cli.client.call("GET", cli.org_path("clients", client_id)), client_text)


LIST_OPTIONS = [
    click.option("--redirect-uri", "redirect_uris", multiple=True, help="Redirect URI (repeat)."),
    click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True),
    click.option(
        "--grant-type",
        "grant_types",
        multiple=True,
        type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
    ),
    click.option("--scope", "scopes", multiple=True, help="Allowed scope (repeat)."),
    click.option("--resource", "resources", multiple=True, help="Allowed resource URI (repeat)."),
    click.option("--access-token-ttl", type=Duration(), help="Access token lifetime, e.g. 10m."),
    click.option("--refresh-token-ttl", type=Duration(), help="Refresh token lifetime, e.g. 1d."),
    click.option("--client-name", help="Human-readable name."),
]


def with_list_options(function: Any) -> Any:
    for option in reversed(LIST_OPTIONS):
        function = option(function)
    return function


def client_body(options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in (
        "redirect_uris",
        "post_logout_redirect_uris",
        "grant_types",
        "scopes",
        "resources",
    ):
        if options.get(name):
            body[name] = list(options[name])
    if options.get("access_token_ttl") is not None:
        body["access_token_ttl_seconds"] = options["access_token_ttl"]
    if options.get("refresh_token_ttl") is not None:
        body["refresh_token_ttl_seconds"] = options["refresh_token_ttl"]
    if options.get("client_name") is not None:
        body["client_name"] = options["client_name"]
    return body


@clients.command("create")
@click.argument("client_id")
@click.option(
    "--auth-method",
    required=True,
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
    help="token_endpoint_auth_method; none = public client.",
)
@with_list_options
@admin_options
def clients_create(cli: Cli, client_id: str, auth_method: str, **options: Any) -> None:
    """Register a client; a client secret is printed once."""
    body = {
        "client_id": client_id,
        "token_endpoint_auth_method": auth_method,
        **client_body(options),
    }
    cli.emit(cli.client.call("POST", cli.org_path("clients"), body), client_text)


@clients.command("update")
@click.argument("client_id")
@with_list_options
@click.option("--disable/--enable", "disabled", default=None)
@admin_options
def clients_update(cli: Cli, client_id: str, disabled: bool | None, **options: Any) -> None:
    """Replace the given lists (redirect URIs, grant types, ...) and settings."""
    body = client_body(options)
    if disabled is not None:
        body["disabled"] = disabled
    cli.emit(cli.client.call("PATCH", cli.org_path("clients", client_id), body), client_text)


@clients.command("rotate-secret")
@click.argument("client_id")
@admin_options
def clients_rotate(cli: Cli, client_id: str) -> None:
    cli.emit(
        cli.client.call("POST", cli.org_path("clients", client_id, "rotate-secret")), client_text
    )


@clients.command("delete")
@click.argument("client_id")
@admin_options
def clients_delete(cli: Cli, client_id: str) -> None:
    cli.client.call("DELETE", cli.org_path("clients", client_id))
    cli.emit({"deleted": client_id}, lambda r: f"deleted client {client_id}")
