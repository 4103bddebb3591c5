"""Mounting of the break-glass plane into the app."""

from __future__ import annotations

import asyncpg
from prometheus_client import Gauge
from quart import Quart

from appliance.breakglass.routes import blueprint
from appliance.breakglass.service import BreakglassService
from appliance.clock import Clock
from appliance.settings import PlaneSettings, Settings


def register(app: Quart) -> None:
    app.register_blueprint(blueprint)


async def startup(
    app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
) -> None:
    """Start the service: load the snapshot and start the database probe.

    Nothing here needs PostgreSQL: the probe publishes the sealing key and
    refreshes the snapshot once the database responds.
    """
    service = BreakglassService(
        pool,
        plane.master_secret,
        database_url=plane.database_url,
        public_url=settings.public_url,
        clock=clock,
        data_dir=settings.data_dir / "breakglass" if settings.data_dir else None,
        snapshot_max_age=settings.breakglass_snapshot_max_age,
        stale_ttl=settings.breakglass_stale_ttl,
    )
    await service.start()
    app.extensions["breakglass"] = service
    app.extensions.setdefault("readiness", {})["breakglass"] = lambda: (
        service.ready(),
        service.status(),
    )
    registry = app.extensions["metrics"].registry
    Gauge(
        "appliance_breakglass_degraded",
        "1 while the break-glass plane serves from its snapshot because PostgreSQL is unreachable",
        registry=registry,
    ).set_function(lambda: 0.0 if service.database_up else 1.0)
    Gauge(
        "appliance_breakglass_snapshot_age_seconds",
        "Age of the break-glass snapshot in memory (-1 without one)",
        registry=registry,
    ).set_function(lambda: float(service.status()["snapshot_age_seconds"] or -1))
    Gauge(
        "appliance_breakglass_journal_backlog",
        "Journal entries not yet replayed into PostgreSQL",
        registry=registry,
    ).set_function(lambda: float(service.journal.backlog() if service.journal else 0))


async def shutdown(app: Quart) -> None:
    service: BreakglassService | None = app.extensions.get("breakglass")
    if service is not None:
        await service.stop()
