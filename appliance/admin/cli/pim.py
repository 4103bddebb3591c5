"""`appliance admin pim`: PIM roles, their policies, eligibility and approvers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from appliance.admin.cli import admin
from appliance.admin.cli.context import Cli, admin_options
from appliance.cli.durations import Duration


@admin.group("pim")
def pim_group() -> None:
    """PIM roles and policies of the session's org."""


def role_text(result: dict[str, Any]) -> str:
    role = result["role"]
    policy = role["policy"]
    return "\n".join(
        [
            f"{role['name']}: max {policy['max_duration_seconds']}s, "
            f"{policy['approvals_required']} approval(s), justification "
            f"{'required' if policy['justification_required'] else 'optional'}, ticket "
            f"{'required' if policy['ticket_required'] else 'optional'}, TOTP step-up "
            f"{'on' if policy['totp_step_up'] else 'off'}",
            f"  eligible: users {', '.join(role['eligible']['users']) or '-'}; "
            f"groups {', '.join(role['eligible']['groups']) or '-'}",
            f"  approvers: users {', '.join(role['approvers']['users']) or '-'}; "
            f"groups {', '.join(role['approvers']['groups']) or '-'}",
        ]
    )


def policy_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--description", help="What the role grants."),
        click.option("--max-duration", type=Duration(), help="Maximum grant duration, e.g. 1h."),
        click.option("--approvals", type=click.IntRange(0, 10), help="Approvals required."),
        click.option("--justification-required/--justification-optional", default=None),
        click.option(
            "--justification-pattern", help="Regular expression a justification must match."
        ),
        click.option("--ticket-required/--ticket-optional", default=None),
        click.option(
            "--ticket-pattern", help="Regular expression a ticket must match, e.g. ^INC-[0-9]+$."
        ),
        click.option(
            "--totp-step-up/--no-totp-step-up",
            default=None,
            help="Ask for a TOTP code when requesting.",
        ),
        click.option(
            "--pending-ttl", type=Duration(), help="How long a request waits for approval."
        ),
        click.option("--allow-future-start/--no-future-start", default=None),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def policy_body(options: dict[str, Any]) -> dict[str, Any]:
    names = {
        "description": "description",
        "max_duration": "max_duration_seconds",
        "approvals": "approvals_required",
        "justification_required": "justification_required",
        "justification_pattern": "justification_pattern",
        "ticket_required": "ticket_required",
        "ticket_pattern": "ticket_pattern",
        "totp_step_up": "totp_step_up",
        "pending_ttl": "pending_ttl_seconds",
        "allow_future_start": "allow_future_start",
    }
    return {names[k]: v for k, v in options.items() if k in names and v is not None}


@pim_group.command("list")
@admin_options
def pim_list(cli: Cli) -> None:
    cli.emit(
        cli.client.call("GET", cli.org_path("pim", "roles"), query={"limit": 1000}),
        lambda r: "\n".join(role_text({"role": x}) for x in r["roles"]) or "no PIM roles",
    )


@pim_group.command("show")
@click.argument("name")
@admin_options
def pim_show(cli: Cli, name: str) -> None:
    cli.emit(cli.client.call("GET", cli.org_path("pim", "roles", name)), role_text)


@pim_group.command("create")
@click.argument("name")
@policy_options
@admin_options
def pim_create(cli: Cli, name: str, **options: Any) -> None:
    """Create a PIM role with its policy."""
    body = {"name": name, **policy_body(options)}
    cli.emit(cli.client.call("POST", cli.org_path("pim", "roles"), body), role_text)


@pim_group.command("update")
@click.argument("name")
@policy_options
@admin_options
def pim_update(cli: Cli, name: str, **options: Any) -> None:
    """Change a role's description or policy; options not given keep their value."""
    cli.emit(
        cli.client.call("PATCH", cli.org_path("pim", "roles", name), policy_body(options)),
        role_text,
    )


@pim_group.command("delete")
@click.argument("name")
@admin_options
def pim_delete(cli: Cli, name: str) -> None:
    cli.client.call("DELETE", cli.org_path("pim", "roles", name))
    cli.emit({"deleted": name}, lambda r: f"deleted PIM role {name}")


def _principal_command(command: str, method: str, relation: str) -> None:
    @pim_group.command(command)
    @click.argument("name")
    @click.option("--user", help="A user.")
    @click.option("--group", help="A group.")
    @admin_options
    def principal(cli: Cli, name: str, user: str | None, group: str | None) -> None:
        if (user is None) == (group is None):
            raise click.UsageError("give exactly one of --user or --group")
        kind, who = ("users", user) if user is not None else ("groups", group)
        assert who is not None
        cli.emit(
            cli.client.call(method, cli.org_path("pim", "roles", name, relation, kind, who)),
            role_text,
        )

    principal.__doc__ = (
        f"{'Add to' if method == 'PUT' else 'Remove from'} the {relation} of role NAME."
    )


_principal_command("add-eligible", "PUT", "eligible")
_principal_command("remove-eligible", "DELETE", "eligible")
_principal_command("add-approver", "PUT", "approvers")
_principal_command("remove-approver", "DELETE", "approvers")
