"""Database access for CLI commands run beside a local `appliance up`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from appliance.db.migrate import plane_role
from appliance.local import DataDir, default_data_dir
from appliance.settings import Plane

if TYPE_CHECKING:
    from appliance.db.embedded import EmbeddedPostgres

# The database `appliance up` creates in its embedded server.
EMBEDDED_DATABASE = "appliance"


def embedded_plane_dsn(data: DataDir, pg: EmbeddedPostgres, plane: Plane) -> str:
    """DSN of `plane`'s role in the embedded server, with its password from `data`."""
    return pg.dsn_for(plane_role(plane), data.role_password(plane), EMBEDDED_DATABASE)


def resolve_admin_dsn(data_dir: Path | None) -> str:
    """DSN of the admin role of the embedded cluster in `data_dir`."""
    from appliance.db.embedded import EmbeddedPostgres

    data = DataDir((data_dir or default_data_dir()).resolve())
    if not (data.role_password_dir / Plane.ADMIN.value).exists():
        raise click.ClickException(
            f"no appliance data in {data.root}: "
            "pass --database-url, or --data-dir of `appliance up`"
        )
    return embedded_plane_dsn(data, EmbeddedPostgres(data.root), Plane.ADMIN)
