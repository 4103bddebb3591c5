"""`appliance admin breakglass alert-targets`: webhooks the break-glass plane calls."""

from __future__ import annotations

from typing import Any

import click

from appliance.admin.cli.breakglass import breakglass_group
from appliance.admin.cli.context import Cli, admin_options, read_secret_line


@breakglass_group.group("alert-targets")
def alert_targets_group() -> None:
    """Webhooks that receive an alert for every break-glass activation and lockout."""


def target_line(target: dict[str, Any]) -> str:
    state = "enabled" if target["enabled"] else "disabled"
    return f"{target['id']}  {state:<8} {target['payload_format']:<5} {target['url']}"


def target_text(result: dict[str, Any]) -> str:
    target = result["alert_target"]
    lines = [target_line(target)]
    for alert in target.get("recent_alerts", []):
        lines.append(
            f"  {alert['created_at']} {alert['event_type']} {alert['account']}: {alert['status']}"
            f" after {alert['attempts']} attempt(s), last HTTP {alert['last_http_status'] or '-'}"
        )
    return "\n".join(lines)


@alert_targets_group.command("list")
@admin_options
def targets_list(cli: Cli) -> None:
    """List the org's alert targets (never their secrets)."""
    cli.emit(
        cli.client.call("GET", cli.org_path("breakglass", "alert-targets"), query={"limit": 1000}),
        lambda r: "\n".join(target_line(t) for t in r["alert_targets"]) or "no alert targets",
    )


@alert_targets_group.command("show")
@click.argument("target_id")
@admin_options
def targets_show(cli: Cli, target_id: str) -> None:
    """Show a target with its recent alerts and their delivery state."""
    cli.emit(
        cli.client.call("GET", cli.org_path("breakglass", "alert-targets", target_id)), target_text
    )


@alert_targets_group.command("add")
# --webhook-url, not --url: --url is the admin plane's base URL in every admin command.
@click.option(
    "--webhook-url",
    "webhook_url",
    required=True,
    help="Absolute http:// or https:// URL of the webhook.",
)
@click.option(
    "--format",
    "payload_format",
    type=click.Choice(["json", "slack"]),
    default="json",
    show_default=True,
    help="Payload format of the deliveries.",
)
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read the HMAC secret (16 characters or more) from the first line of standard "
    "input; without it a secret is generated and printed once.",
)
@admin_options
def targets_add(cli: Cli, webhook_url: str, payload_format: str, secret_stdin: bool) -> None:
    """Add an alert target. Its secret is sealed to the break-glass plane."""
    body: dict[str, Any] = {"url": webhook_url, "payload_format": payload_format}
    if secret_stdin:
        body["secret"] = read_secret_line("secret")
    result = cli.client.call("POST", cli.org_path("breakglass", "alert-targets"), body)

    def summary(r: dict[str, Any]) -> str:
        text = target_text(r)
        if "secret" in r:
            text += f"\nsigning secret (shown once, configure it on the receiver): {r['secret']}"
        return text

    cli.emit(result, summary)


@alert_targets_group.command("update")
@click.argument("target_id")
@click.option("--webhook-url", "webhook_url", help="New absolute http:// or https:// URL.")
@click.option("--format", "payload_format", type=click.Choice(["json", "slack"]))
@click.option("--enable/--disable", "enabled", default=None, help="Turn deliveries on or off.")
@admin_options
def targets_update(
    cli: Cli,
    target_id: str,
    webhook_url: str | None,
    payload_format: str | None,
    enabled: bool | None,
) -> None:
    """Change a target's URL or format, or enable or disable it (the secret stays)."""
    body = {
        k: v
        for k, v in {
            "url": webhook_url,
            "payload_format": payload_format,
            "enabled": enabled,
        }.items()
        if v is not None
    }
    if not body:
        raise click.UsageError(
            "nothing to change: give --webhook-url, --format, --enable or --disable"
        )
    cli.emit(
        cli.client.call("PATCH", cli.org_path("breakglass", "alert-targets", target_id), body),
        target_text,
    )


@alert_targets_group.command("remove")
@click.argument("target_id")
@admin_options
def targets_remove(cli: Cli, target_id: str) -> None:
    """Remove a target and its alert history."""
    cli.client.call("DELETE", cli.org_path("breakglass", "alert-targets", target_id))
    cli.emit({"removed": target_id}, lambda r: f"alert target {target_id} removed")
