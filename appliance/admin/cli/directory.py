"""`appliance admin orgs|users|groups|roles`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from appliance.admin.cli import admin
from appliance.admin.cli.context import Cli, admin_options, read_secret_line, write_qr


def user_line(user: dict[str, Any]) -> str:
    state = "active"
    if user["disabled"]:
        state = "disabled"
    elif user["locked"]:
        state = "locked"
    return f"{user['username']:<24} {state:<9} totp: {','.join(user['totp_planes']) or '-'}"


def enrolled(result: dict[str, Any], what: str, qr_out: Path | None) -> str:
    lines = [what, f"TOTP provisioning URI (shown once): {result['totp']['provisioning_uri']}"]
    if "password" in result:
        lines.append(f"password (shown once): {result['password']}")
    return "\n".join(lines) + write_qr(result["totp"], qr_out)


QR_OUT = click.option(
    "--qr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the TOTP QR code (PNG, mode 0600) to this file.",
)


@admin.group()
def orgs() -> None:
    """Orgs (platform admins, logged in to org `system`)."""


@orgs.command("list")
@admin_options
def orgs_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", "/admin/v1/orgs"), lambda r: "\n".join(o["name"] for o in r["orgs"])
    )


@orgs.command("create")
@click.argument("name")
@click.option("--admin-username", required=True, help="First org-admin of the new org.")
@click.option("--display-name", default="", help="Human-readable org name.")
@click.option("--admin-email", help="Email of the first admin.")
@click.option(
    "--admin-password-stdin",
    is_flag=True,
    help="Read the admin's password from standard input (default: generated).",
)
@QR_OUT
@admin_options
def orgs_create(
    cli: Cli,
    name: str,
    admin_username: str,
    display_name: str,
    admin_email: str | None,
    admin_password_stdin: bool,
    qr_out: Path | None,
) -> None:
    """Create an org and its first org-admin (password and TOTP shown once)."""
    body: dict[str, Any] = {
        "name": name,
        "admin_username": admin_username,
        "display_name": display_name,
    }
    if admin_email:
        body["admin_email"] = admin_email
    if admin_password_stdin:
        body["admin_password"] = read_secret_line("password")
    result = cli.client.call("POST", "/admin/v1/orgs", body)
    cli.emit(
        result,
        lambda r: enrolled(
            r["admin"], f"created org {name} with org-admin {admin_username}", qr_out
        ),
    )
    if cli.as_json:
        write_qr(result["admin"]["totp"], qr_out)


@admin.group()
def users() -> None:
    """Users of the session's org."""


@users.command("list")
@admin_options
def users_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("users"), query={"limit": 1000}),
        lambda r: "\n".join(user_line(u) for u in r["users"]),
    )


@users.command("show")
@click.argument("username")
@admin_options
def users_show(cli: Cli, username: str) -> None:
    cli.emit(cli.client.call("GET", cli.org_path("users", username)))


@users.command("create")
@click.argument("username")
@click.option("--display-name", help="Display name.")
@click.option("--email", help="Email address.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new user's password from standard input (default: generated).",
)
@QR_OUT
@admin_options
def users_create(
    cli: Cli,
    username: str,
    display_name: str | None,
    email: str | None,
    password_stdin: bool,
    qr_out: Path | None,
) -> None:
    """Create a user with a TOTP seed for every login plane (shown once)."""
    body: dict[str, Any] = {"username": username}
    if display_name:
        body["display_name"] = display_name
    if email:
        body["email"] = email
    if password_stdin:
        body["password"] = read_secret_line("password")
    result = cli.client.call("POST", cli.org_path("users"), body)
    cli.emit(result, lambda r: enrolled(r, f"created user {username}", qr_out))
    if cli.as_json:
        write_qr(result["totp"], qr_out)


@users.command("update")
@click.argument("username")
@click.option("--display-name", help="New display name.")
@click.option("--email", help="New email address (empty to clear).")
@admin_options
def users_update(cli: Cli, username: str, display_name: str | None, email: str | None) -> None:
    body = {
        k: v for k, v in {"display_name": display_name, "email": email}.items() if v is not None
    }
    cli.emit(
        cli.client.call("PATCH", cli.org_path("users", username), body),
        lambda r: user_line(r["user"]),
    )


def _user_action(name: str, help_text: str) -> None:
    @users.command(name, help=help_text)
    @click.argument("username")
    @admin_options
    def command(cli: Cli, username: str) -> None:
        cli.emit(
            cli.client.call("POST", cli.org_path("users", username, name)),
            lambda r: user_line(r["user"]),
        )


_user_action("disable", "Disable a user (its sessions stop working).")
_user_action("enable", "Enable a disabled user.")
_user_action("unlock", "Clear a user's lockout after failed logins.")


@users.command("reset-password")
@click.argument("username")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new password from standard input (default: generated).",
)
@admin_options
def users_reset_password(cli: Cli, username: str, password_stdin: bool) -> None:
    body = {"password": read_secret_line("password")} if password_stdin else {}
    result = cli.client.call("POST", cli.org_path("users", username, "reset-password"), body)
    cli.emit(
        result,
        lambda r: (
            f"password of {username} reset"
            + (f"; new password (shown once): {r['password']}" if "password" in r else "")
        ),
    )


@users.command("reset-totp")
@click.argument("username")
@QR_OUT
@admin_options
def users_reset_totp(cli: Cli, username: str, qr_out: Path | None) -> None:
    """Replace the user's TOTP seed on every login plane."""
    result = cli.client.call("POST", cli.org_path("users", username, "reset-totp"))
    cli.emit(result, lambda r: enrolled(r, f"TOTP of {username} replaced", qr_out))
    if cli.as_json:
        write_qr(result["totp"], qr_out)


@admin.group()
def groups() -> None:
    """Groups of the session's org."""


@groups.command("list")
@admin_options
def groups_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("groups"), query={"limit": 1000}),
        lambda r: "\n".join(f"{g['name']:<24} {g['member_count']} members" for g in r["groups"]),
    )


@groups.command("show")
@click.argument("name")
@admin_options
def groups_show(cli: Cli, name: str) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("groups", name)),
        lambda r: f"{name}: {', '.join(r['group']['members']) or 'no members'}",
    )


@groups.command("create")
@click.argument("name")
@admin_options
def groups_create(cli: Cli, name: str) -> None:
    cli.emit(
        cli.client.call("POST", cli.org_path("groups"), {"name": name}),
        lambda r: f"created group {name}",
    )


@groups.command("delete")
@click.argument("name")
@admin_options
def groups_delete(cli: Cli, name: str) -> None:
    cli.client.call("DELETE", cli.org_path("groups", name))
    cli.emit({"deleted": name}, lambda r: f"deleted group {name}")


@groups.command("add-member")
@click.argument("name")
@click.argument("username")
@admin_options
def groups_add(cli: Cli, name: str, username: str) -> None:
    cli.emit(
        cli.client.call("PUT", cli.org_path("groups", name, "members", username)),
        lambda r: f"{name}: {', '.join(r['group']['members'])}",
    )


@groups.command("remove-member")
@click.argument("name")
@click.argument("username")
@admin_options
def groups_remove(cli: Cli, name: str, username: str) -> None:
    cli.emit(
        cli.client.call("DELETE", cli.org_path("groups", name, "members", username)),
        lambda r: f"{name}: {', '.join(r['group']['members']) or 'no members'}",
    )


@admin.group()
def roles() -> None:
    """Roles of the admin API and their bindings."""


@roles.command("list")
@admin_options
def roles_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("roles")),
        lambda r: "\n".join(f"{x['name']:<20} {x['description']}" for x in r["roles"]),
    )


def bindings_text(result: dict[str, Any]) -> str:
    return "\n".join(f"{b['username']:<24} {b['role']}" for b in result["bindings"])


@roles.command("bindings")
@admin_options
def roles_bindings(cli: Cli) -> None:
    cli.emit(cli.client.call("GET", cli.org_path("role-bindings")), bindings_text)


@roles.command("bind")
@click.argument("username")
@click.argument("role")
@admin_options
def roles_bind(cli: Cli, username: str, role: str) -> None:
    cli.emit(cli.client.call("PUT", cli.org_path("role-bindings", username, role)), bindings_text)


@roles.command("unbind")
@click.argument("username")
@click.argument("role")
@admin_options
def roles_unbind(cli: Cli, username: str, role: str) -> None:
    cli.client.call("DELETE", cli.org_path("role-bindings", username, role))
    cli.emit(
        {"removed": {"username": username, "role": role}},
        lambda r: f"removed {role} from {username}",
    )
