"""A real Hypercorn server running the auth plane on 127.0.0.1, for third-party clients.

The server runs in the test session's event loop on a free port, with the
system clock: the clients check `iat`/`exp` against their own clocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.ports import free_port
from appliance.settings import Plane
from tests.conftest import Database
from tests.oidc.conftest import Tenant, make_tenant


@dataclass(frozen=True)
class LiveServer:
    url: str


@pytest.fixture(scope="session")
async def live_server(database: Database) -> AsyncIterator[LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(database.settings(Plane.AUTH, public_url=url))
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    async with httpx.AsyncClient() as probe:
        for _ in range(100):
            try:
                if (await probe.get(f"{url}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"auth plane did not start on {url}")
    # The session-long server would otherwise run the key-rotation job over every
    # test org after about 30 seconds, racing the rotation tests.
    app.extensions["oidc_rotation"].cancel()
    try:
        yield LiveServer(url)
    finally:
        stop.set()
        await task


@pytest.fixture
async def live_tenant(database: Database, superuser: asyncpg.Connection) -> Tenant:
    """An org with a user and clients; its clock follows real time for TOTP codes."""
    return await make_tenant(database, superuser, RealTimeClock())


class RealTimeClock(FrozenClock):
    """A `FrozenClock` whose `now` is the current time, so `Tenant.totp` matches the server."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    @now.setter
    def now(self, value: datetime) -> None:
        pass
