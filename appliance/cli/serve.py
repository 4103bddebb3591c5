"""`appliance serve`: run one plane (or all) in this process with Hypercorn."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import click

from appliance.log import configure_logging, log_fields
from appliance.settings import PLANE_CHOICES, Settings, SettingsError, load_settings

log = logging.getLogger("appliance.serve")


@click.command()
@click.option(
    "--plane",
    type=click.Choice(PLANE_CHOICES),
    envvar="APPLIANCE_PLANE",
    required=True,
    help="Plane to serve; `all` mounts every plane in this process.",
)
@click.option(
    "--host",
    envvar="APPLIANCE_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Listen address.",
)
@click.option(
    "--port",
    envvar="APPLIANCE_PORT",
    type=click.IntRange(1, 65535),
    default=8400,
    show_default=True,
    help="Listen port.",
)
def serve(plane: str, host: str, port: int) -> None:
    """Serve PLANE until SIGTERM or Ctrl-C.

    Configuration comes from APPLIANCE_* environment variables (see
    docs/architecture.md); an invalid value stops the start with its name.
    """
    env = dict(os.environ, APPLIANCE_HOST=host, APPLIANCE_PORT=str(port))
    try:
        settings = load_settings(env, plane=plane)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    configure_logging(settings.log_level)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from appliance.app import create_app

    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    # Slow clients cannot hold a connection open indefinitely.
    config.keep_alive_timeout = 5.0
    config.h11_max_incomplete_size = 16 * 1024

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(settings)
    log.info(
        "serving",
        extra=log_fields(planes=[p.value for p in settings.planes], bind=config.bind[0]),
    )
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
    log.info("stopped", extra=log_fields(planes=[p.value for p in settings.planes]))
