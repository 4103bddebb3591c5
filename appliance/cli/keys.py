"""`appliance keys rotate`: rotate a plane's signing key of one org now.

The command needs what the plane itself has: the plane role's DSN and the
plane's master secret (to encrypt the new `next` key). It reads them from
`APPLIANCE_<PLANE>_DATABASE_URL` and `APPLIANCE_<PLANE>_MASTER_SECRET_FILE`
when set, otherwise from the data folder of a local `appliance up`.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import asyncpg
import click

from appliance.cli.local_db import embedded_plane_dsn
from appliance.db.queries.orgs import ORG_BY_NAME
from appliance.db.tenancy import set_org
from appliance.keys.rotation import RotationPolicy, rotate_org
from appliance.keys.signing import SigningKeyStore
from appliance.local import DataDir, default_data_dir
from appliance.settings import Plane, SettingsError, load_plane_settings

# The planes whose rotation policy is defined; each plane's retired-key
# overlap depends on the lifetime of what it signs.
ROTATABLE_PLANES = ["auth"]


def _policy(plane: Plane) -> RotationPolicy:
    from appliance.oidc.issuer_keys import AUTH_ROTATION_POLICY

    return AUTH_ROTATION_POLICY


def resolve_plane_access(plane: Plane, data_dir: Path | None) -> tuple[str, bytes]:
    """Return (DSN, master secret) of `plane` from the environment or an `appliance up` folder."""
    prefix = f"APPLIANCE_{plane.name}"
    if os.environ.get(f"{prefix}_DATABASE_URL") or os.environ.get(f"{prefix}_DATABASE_URL_FILE"):
        try:
            settings = load_plane_settings(os.environ, plane)
        except SettingsError as error:
            raise click.ClickException(str(error)) from None
        return settings.database_url, settings.master_secret
    from appliance.db.embedded import EmbeddedPostgres

    data = DataDir((data_dir or default_data_dir()).resolve())
    if (
        not data.master_secret_file(plane).exists()
        or not (data.role_password_dir / plane.value).exists()
    ):
        raise click.ClickException(
            f"no {plane.value} plane secrets in {data.root}: set {prefix}_DATABASE_URL and "
            f"{prefix}_MASTER_SECRET_FILE, or pass --data-dir of `appliance up`"
        )
    dsn = embedded_plane_dsn(data, EmbeddedPostgres(data.root), plane)
    return dsn, data.master_secret(plane)


async def _rotate(dsn: str, master_secret: bytes, plane: Plane, org: str) -> dict[str, object]:
    from datetime import UTC, datetime

    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(ORG_BY_NAME, org)
        if row is None:
            raise click.ClickException(f"org {org!r} not found")
        store = SigningKeyStore(plane.value, master_secret)
        async with conn.transaction():
            await set_org(conn, row["id"])
            result = await rotate_org(
                conn,
                store,
                row["id"],
                policy=_policy(plane),
                now=datetime.now(UTC),
                force=True,
                actor="cli",
            )
    finally:
        await conn.close()
    return {
        "org": org,
        "plane": plane.value,
        "retired": result.retired,
        "activated": result.activated,
        "next": result.created_next,
    }


@click.group()
def keys() -> None:
    """Signing keys of the planes."""


@keys.command("rotate")
@click.option(
    "--plane", type=click.Choice(ROTATABLE_PLANES), required=True, help="Plane whose key to rotate."
)
@click.option("--org", required=True, help="Org name, as in its issuer URL.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of `appliance up`, used when APPLIANCE_<PLANE>_DATABASE_URL is not set.",
)
def rotate_command(plane: str, org: str, data_dir: Path | None) -> None:
    """Rotate the signing key of ORG on PLANE now.

    Promotes the published next key, retires the active one and publishes a
    new next key. Relying parties that cached the key set before the next key
    was published (normally a day ahead) may fail to verify new tokens until
    they fetch the key set again. The retired key stays published until every
    token it signed has expired. Prints the result as JSON.
    """
    chosen = Plane(plane)
    dsn, master_secret = resolve_plane_access(chosen, data_dir)
    try:
        result = asyncio.run(_rotate(dsn, master_secret, chosen, org))
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"key rotation failed: {error}") from None
    click.echo(json.dumps(result, indent=2))
