"""A PostgreSQL that stalls (packets dropped) must not stall break-glass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from quart import Quart

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.settings import Plane
from chaos.proxy import ProxyMode, SocketProxy
from tests.breakglass.conftest import Account, activation_body, make_account, source
from tests.conftest import Database


def _through(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def proxy(database: Database) -> AsyncIterator[SocketProxy]:
    running = SocketProxy(None, (database.cluster.host, database.cluster.port))
    await running.start()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def stalling_app(
    database: Database, proxy: SocketProxy, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Quart]:
    settings = database.settings(Plane.BREAKGLASS)
    plane = settings.planes[Plane.BREAKGLASS]
    plane = replace(plane, database_url=_through(plane.database_url, proxy.port))
    settings = replace(settings, planes={Plane.BREAKGLASS: plane}, data_dir=tmp_path)
    application = create_app(settings, clock=clock)
    async with application.test_app():
        yield application


async def test_stalled_database_falls_back_within_seconds(
    stalling_app: Quart,
    proxy: SocketProxy,
    database: Database,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
) -> None:
    account: Account = await make_account(database, superuser, clock)
    service = stalling_app.extensions["breakglass"]
    await service.refresh_snapshot()
    client = stalling_app.test_client()
    url = f"/o/{account.org}/breakglass/activate"
    online = await client.post(url, json=activation_body(account), scope_base=source())
    assert online.status_code == 201
    assert (await online.get_json())["degraded"] is False

    proxy.set_mode(ProxyMode.STALL)
    clock.advance(30)
    started = time.monotonic()
    response = await client.post(url, json=activation_body(account), scope_base=source())
    elapsed = time.monotonic() - started
    assert response.status_code == 201, await response.get_data()
    assert (await response.get_json())["degraded"] is True
    # The online deadline (3 s) plus the confirming probe (1 s), not the stall's length.
    assert elapsed < 6
    await asyncio.sleep(0)


async def test_code_is_judged_at_arrival_after_a_stall(
    stalling_app: Quart,
    proxy: SocketProxy,
    database: Database,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
) -> None:
    account: Account = await make_account(database, superuser, clock)
    await stalling_app.extensions["breakglass"].refresh_snapshot()
    client = stalling_app.test_client()
    body = activation_body(account)  # a code for the step of arrival
    proxy.set_mode(ProxyMode.STALL)

    async def time_passes() -> None:
        await asyncio.sleep(1)
        clock.advance(90)  # the code's window ends while the online attempt waits

    mover = asyncio.create_task(time_passes())
    response = await client.post(
        f"/o/{account.org}/breakglass/activate", json=body, scope_base=source()
    )
    await mover
    assert response.status_code == 201, await response.get_data()
    assert (await response.get_json())["degraded"] is True


async def test_stall_ending_during_probe_retries_online(
    stalling_app: Quart,
    proxy: SocketProxy,
    database: Database,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account: Account = await make_account(database, superuser, clock)
    service = stalling_app.extensions["breakglass"]
    await service.refresh_snapshot()
    client = stalling_app.test_client()
    url = f"/o/{account.org}/breakglass/activate"
    warm = await client.post(url, json=activation_body(account), scope_base=source())
    assert warm.status_code == 201
    probe = service._database_answers
    probes: list[bool] = []

    async def stall_ends_then_probe() -> bool:
        # The partition heals after the online attempt timed out and before the probe.
        proxy.set_mode(ProxyMode.PASS)
        probes.append(await probe())
        return probes[-1]

    monkeypatch.setattr(service, "_database_answers", stall_ends_then_probe)
    # Without its background probe, the plane cannot notice the stall before the request does.
    for task in service._tasks:
        if task.get_name() == "breakglass-probe":
            task.cancel()
    proxy.set_mode(ProxyMode.STALL)
    clock.advance(30)

    response = await client.post(url, json=activation_body(account), scope_base=source())

    assert response.status_code == 201, await response.get_data()
    assert probes == [True]
    assert (await response.get_json())["degraded"] is False
    assert service.database_up


async def test_shutdown_during_stall_cuts_pool(
    database: Database,
    proxy: SocketProxy,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    account: Account = await make_account(database, superuser, clock)
    settings = database.settings(Plane.BREAKGLASS)
    plane = settings.planes[Plane.BREAKGLASS]
    plane = replace(plane, database_url=_through(plane.database_url, proxy.port))
    settings = replace(settings, planes={Plane.BREAKGLASS: plane}, data_dir=tmp_path)
    application = create_app(settings, clock=clock)
    testing = application.test_app()
    await testing.startup()
    client = application.test_client()
    online = await client.post(
        f"/o/{account.org}/breakglass/activate",
        json=activation_body(account),
        scope_base=source(),
    )
    assert online.status_code == 201
    proxy.set_mode(ProxyMode.STALL)

    started = time.monotonic()
    await testing.shutdown()  # raises TimeoutError after 6 s when the pool waits on the stall

    # At most 1.5 s for the plane's tasks and 3 s for the pool, plus scheduling.
    assert time.monotonic() - started < 5.5
