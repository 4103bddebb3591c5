"""Mounting of the admin plane: JSON API, OpenAPI document and console."""

from __future__ import annotations

import asyncpg
from quart import Quart

from appliance.admin import console, openapi
from appliance.admin.routes import load_routes
from appliance.admin.service import PLANE, AdminService
from appliance.clock import Clock
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.settings import PlaneSettings, Settings


def register(app: Quart) -> None:
    app.register_blueprint(load_routes())
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(console.blueprint)


async def startup(
    app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
) -> None:
    """Publish this plane's sealing key (admin logins open TOTP seeds sealed to it)."""
    service = AdminService(pool, plane.master_secret, public_url=settings.public_url, clock=clock)
    await pool.execute(SEAL_KEY_UPSERT, PLANE, service.seal_public_key)
    app.extensions["admin"] = service
