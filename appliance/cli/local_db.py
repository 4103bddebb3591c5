"""Database access for CLI commands run beside a local `appliance up`."""

from __future__ import annotations

from pathlib import Path

import click

from appliance.local import DataDir, default_data_dir
from appliance.settings import Plane


def resolve_admin_dsn(data_dir: Path | None) -> str:
    """DSN of the admin role of the embedded cluster in `data_dir`."""
    from appliance.db.embedded import EmbeddedPostgres

    data = DataDir((data_dir or default_data_dir()).resolve())
    if not (data.role_password_dir / Plane.ADMIN.value).exists():
        raise click.ClickException(
            f"no appliance data in {data.root}: "
            "pass --database-url, or --data-dir of `appliance up`"
        )
    pg = EmbeddedPostgres(data.root)
    return pg.dsn_for("appliance_admin", data.role_password(Plane.ADMIN), "appliance")
