"""Mounting of the break-glass plane into the app."""

from __future__ import annotations

import asyncpg
from quart import Quart

from appliance.breakglass.activation import BreakglassService
from appliance.breakglass.routes import blueprint
from appliance.clock import Clock
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.settings import PlaneSettings, Settings


def register(app: Quart) -> None:
    app.register_blueprint(blueprint)


async def startup(
    app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
) -> None:
    service = BreakglassService(pool, plane.master_secret, public_url=settings.public_url, clock=clock)
    await pool.execute(SEAL_KEY_UPSERT, "breakglass", service.seal_public_key)
    app.extensions["breakglass"] = service
