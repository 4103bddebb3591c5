"""Mounting of this plane into the app: its routes and its start-up work."""

from __future__ import annotations

import asyncpg
from quart import Quart

from appliance.clock import Clock
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.keys.sealing import sealing_private_key
from appliance.settings import PlaneSettings, Settings

PLANE = "admin"


def register(app: Quart) -> None:
    """Mount this plane's blueprints (none yet: only health and metrics answer)."""


async def startup(
    app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
) -> None:
    """Publish this plane's sealing key, so the admin plane can seal user TOTP seeds to it."""
    public_key = bytes(sealing_private_key(plane.master_secret, PLANE).public_key)
    await pool.execute(SEAL_KEY_UPSERT, PLANE, public_key)
