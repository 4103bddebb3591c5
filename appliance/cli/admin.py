"""`appliance admin`: the admin API from a terminal (commands in `appliance.admin.cli`)."""

from __future__ import annotations

from appliance.admin.cli import register_commands

admin = register_commands()
