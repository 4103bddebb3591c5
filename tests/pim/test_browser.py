"""The approver page end to end in a real headless Chromium against a real Hypercorn server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.identity.totp import STEP_SECONDS, code_at
from appliance.ports import free_port
from appliance.settings import Plane
from tests.conftest import Database
from tests.pim.conftest import ROLE, World, make_world

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "pim-approver.png"


@pytest.fixture(autouse=True)
def chromium_installed() -> None:
    """Fail, never skip, without the browser: the approver page must be tested in one."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")


@pytest.fixture
async def server(database: Database) -> AsyncIterator[str]:
    """The PIM plane on a real Hypercorn server, on loopback http (development cookies)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(database.settings(Plane.PIM, public_url=base))
    app.config["PIM_JOBS"] = False
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    async with httpx.AsyncClient() as probe:
        for _ in range(100):
            try:
                if (await probe.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        stop.set()
        await task


def current_code(world: World, name: str) -> str:
    return code_at(world.users[name].totp_secret, int(time.time() // STEP_SECONDS))


async def test_approver_signs_in_and_approves_in_chromium(
    server: str, database: Database, superuser: asyncpg.Connection
) -> None:
    from playwright.async_api import async_playwright

    clock = FrozenClock(datetime.now(UTC))  # only for seeding; the server uses the system clock
    world = await make_world(database, superuser, clock, None)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=server) as http:
        login = await http.post(
            f"/o/{world.org}/pim/session",
            json={
                "username": "alice",
                "password": world.users["alice"].password,
                "totp": current_code(world, "alice"),
            },
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        reasons = [
            ("replication lag on db-7: rebuild the standby", "INC-2231", 1800),
            ("apply the 2026-12 schema migration", "CHG-1187", 3600),
        ]
        ids = []
        for reason, ticket, duration in reasons:
            created = await http.post(
                f"/o/{world.org}/pim/api/requests",
                json={
                    "role": ROLE,
                    "duration_seconds": duration,
                    "justification": reason,
                    "ticket": ticket,
                },
                headers=headers,
            )
            assert created.status_code == 201
            ids.append(created.json()["id"])

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 640})
            response = await page.goto(f"{server}/o/{world.org}/pim/")
            assert response is not None
            assert page.url.endswith(f"/o/{world.org}/pim/login")
            await page.fill("#username", "bob")
            await page.fill("#password", world.users["bob"].password)
            await page.fill("#totp", current_code(world, "bob"))
            async with page.expect_navigation():
                await page.click("button[type=submit]")

            assert page.url.endswith(f"/o/{world.org}/pim/")
            row = page.locator(f"#request-{ids[0]}")
            await row.wait_for()
            text = await row.inner_text()
            for expected in (
                "alice",
                ROLE,
                "30 min",
                "replication lag on db-7",
                "INC-2231",
                "0 of 2",
            ):
                assert expected in text
            # HttpOnly: no script can read the session cookie.
            assert await page.evaluate("document.cookie") == ""
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            await row.locator("input[name=comment]").fill("standby rebuild approved")
            async with page.expect_navigation():
                await row.locator("button[value=approve]").click()
            assert "Your approval was recorded." in await page.inner_text("main")
            assert await page.locator(f"#request-{ids[0]}").count() == 0
        finally:
            await browser.close()

    decision = await superuser.fetchrow(
        "SELECT decision, comment FROM pim_decisions WHERE request_id = $1", ids[0]
    )
    assert (decision["decision"], decision["comment"]) == ("approve", "standby rebuild approved")
