"""Mounting of the auth plane: its routes, its services and its key-rotation job."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from quart import Quart

from appliance.clock import Clock
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.keys.rotation import run_rotation_forever
from appliance.oidc import logout, routes, web
from appliance.oidc.issuer_keys import AUTH_ROTATION_POLICY
from appliance.oidc.maintenance import purge_expired
from appliance.oidc.service import PLANE, OidcService
from appliance.settings import PlaneSettings, Settings


def register(app: Quart) -> None:
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(web.blueprint)
    app.register_blueprint(logout.blueprint)

    @app.after_serving
    async def stop_rotation() -> None:
        task: asyncio.Task[None] | None = app.extensions.pop("oidc_rotation", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def startup(
    app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
) -> None:
    """Publish the sealing key (the admin plane seals user TOTP seeds to it) and start services."""
    service = OidcService(pool, plane.master_secret, public_url=settings.public_url, clock=clock)
    await pool.execute(SEAL_KEY_UPSERT, PLANE, service.seal_public_key)
    app.extensions["oidc"] = service
    app.extensions["oidc_rotation"] = asyncio.create_task(
        run_rotation_forever(
            pool,
            service.keys.store,
            policy=AUTH_ROTATION_POLICY,
            clock=clock,
            on_rotated=service.keys.forget,
            maintenance=purge_expired,
        ),
        name="auth-key-rotation",
    )
