"""Mounting of the PIM plane into the app: its routes, its service and its jobs.

`app.config["PIM_JOBS"] = False` (set before serving starts) keeps the job
runner off; tests do that to run jobs one at a time with a frozen clock.
"""

from __future__ import annotations

import asyncpg
from quart import Quart

from appliance.clock import Clock
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.jobs import JobRunner
from appliance.notify.delivery import UrllibSender
from appliance.pim import api, web
from appliance.pim.audit import PLANE
from appliance.pim.jobs import pim_jobs
from appliance.pim.service import PimService
from appliance.settings import PlaneSettings, Settings


def register(app: Quart) -> None:
    app.register_blueprint(api.blueprint)
    app.register_blueprint(web.blueprint)


async def startup(
    app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
) -> None:
    """Start the service and the jobs, and publish the sealing key.

    The admin plane seals user TOTP seeds to the published key.
    """
    service = PimService(pool, plane.master_secret, public_url=settings.public_url, clock=clock)
    await pool.execute(SEAL_KEY_UPSERT, PLANE, service.seal_public_key)
    app.extensions["pim"] = service
    if app.config.get("PIM_JOBS", True):
        runner = JobRunner(pool, pim_jobs(service, UrllibSender()), clock=clock, plane=PLANE)
        runner.start()
        app.extensions["pim_jobs"] = runner


async def shutdown(app: Quart) -> None:
    """Stop the job runner before the pool closes."""
    runner: JobRunner | None = app.extensions.pop("pim_jobs", None)
    if runner is not None:
        await runner.stop()
