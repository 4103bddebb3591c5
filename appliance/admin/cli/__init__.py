"""`appliance admin`: the admin API from a terminal, scriptable with `--json`."""

from __future__ import annotations

import click


@click.group()
def admin() -> None:
    """Administer orgs, users, roles, break-glass accounts, keys and audit."""


def register_commands() -> click.Group:
    """Attach every sub-command module to the `admin` group and return it."""
    from appliance.admin.cli import (  # noqa: F401
        audit,
        breakglass,
        breakglass_alerts,
        clients,
        directory,
        keys,
        pim,
        session,
    )

    return admin
