"""Entry point of the `appliance` command."""

from __future__ import annotations

import click

from appliance import __version__
from appliance.cli.admin import admin
from appliance.cli.audit import audit
from appliance.cli.breakglass import breakglass
from appliance.cli.chaos import chaos
from appliance.cli.credential import credential
from appliance.cli.demo import demo
from appliance.cli.doctor import doctor
from appliance.cli.incident import incident
from appliance.cli.keys import keys
from appliance.cli.migrate import migrate_command
from appliance.cli.pim import pim
from appliance.cli.serve import serve
from appliance.cli.up import up


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="appliance")
def cli() -> None:
    """Break-glass and privileged-access appliance with an embedded OIDC provider."""


cli.add_command(up)
cli.add_command(serve)
cli.add_command(migrate_command)
cli.add_command(breakglass)
cli.add_command(credential)
cli.add_command(audit)
cli.add_command(demo)
cli.add_command(admin)
cli.add_command(pim)
cli.add_command(keys)
cli.add_command(chaos)
cli.add_command(doctor)
cli.add_command(incident)


def main() -> None:
    cli(prog_name="appliance")
