"""Security alerts of activations: signed webhooks, delivered with retries."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from appliance.clock import FrozenClock
from appliance.db.queries.breakglass_alerts import ALERT_TARGET_INSERT
from appliance.db.tenancy import set_org
from appliance.keys.sealing import seal, sealing_private_key
from appliance.notify.webhooks import verify_signature
from appliance.settings import Plane
from tests.breakglass.conftest import Account, activation_body, source
from tests.conftest import Database
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture(autouse=True)
async def fresh_job_schedule(superuser: asyncpg.Connection) -> None:
    """Each test has its own frozen clock, so another test's job schedule would not be due."""
    await superuser.execute("DELETE FROM job_schedule WHERE name = 'breakglass.alerts.deliver'")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    try:
        yield running
    finally:
        running.stop()


async def add_target(
    database: Database, superuser: asyncpg.Connection, account: Account, url: str, fmt: str = "json"
) -> bytes:
    secret = secrets.token_urlsafe(24).encode()
    public = bytes(
        sealing_private_key(database.master_secrets[Plane.BREAKGLASS], "breakglass").public_key
    )
    async with superuser.transaction():
        await set_org(superuser, account.org_id)
        await superuser.fetchval(
            ALERT_TARGET_INSERT, account.org_id, url, seal(public, secret), fmt
        )
    return secret


async def _alert_row_when(
    superuser: asyncpg.Connection, account: Account, condition: Callable[[asyncpg.Record], bool]
) -> asyncpg.Record:
    for _ in range(100):
        row = await superuser.fetchrow(
            "SELECT status, attempts, last_http_status, "
            "next_attempt_at - last_attempt_at AS backoff "
            "FROM breakglass_alerts WHERE org_id = $1",
            account.org_id,
        )
        if row is not None and condition(row):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"alert row never met the condition; last: {row}")


async def test_activation_sends_signed_alert(
    client: Client,
    database: Database,
    superuser: asyncpg.Connection,
    account: Account,
    receiver: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    secret = await add_target(database, superuser, account, receiver.url)
    response = await client.post(
        f"/o/{account.org}/breakglass/activate", json=activation_body(account), scope_base=source()
    )
    assert response.status_code == 201
    credential_id = (await response.get_json())["credential_id"]
    clock.advance(5)  # the delivery job runs on the app's clock
    [alert] = await receiver.arrived(1)
    assert alert.headers["X-Appliance-Event"] == "breakglass.activated"
    verify_signature(
        secret, alert.headers["X-Appliance-Signature"], alert.body, now=int(time.time())
    )
    body = json.loads(alert.body)
    assert body["data"]["credential_id"] == credential_id
    assert body["data"]["incident"] == "INC-4711"
    assert "credential" not in body["data"]
    row = await _alert_row_when(superuser, account, lambda r: r["status"] != "pending")
    assert row["status"] == "delivered"


async def test_failed_delivery_is_retried(
    client: Client,
    database: Database,
    superuser: asyncpg.Connection,
    account: Account,
    receiver: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    receiver.status = 503
    await add_target(database, superuser, account, receiver.url)
    await client.post(
        f"/o/{account.org}/breakglass/activate", json=activation_body(account), scope_base=source()
    )
    clock.advance(5)
    await receiver.arrived(1)
    # The job commits the attempt after the receiver answered: wait for the commit.
    row = await _alert_row_when(superuser, account, lambda r: r["attempts"] >= 1)
    assert row["status"] == "pending"
    assert row["attempts"] >= 1
    assert row["last_http_status"] == 503
    assert row["backoff"].total_seconds() == 10


async def test_lockout_sends_alert(
    client: Client,
    database: Database,
    superuser: asyncpg.Connection,
    account: Account,
    receiver: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    await add_target(database, superuser, account, receiver.url, fmt="slack")
    scope = source()
    for _ in range(5):
        await client.post(
            f"/o/{account.org}/breakglass/activate",
            json=activation_body(account, passphrase="wrong"),
            scope_base=scope,
        )
    clock.advance(5)  # the delivery job runs on the app's clock
    [alert] = await receiver.arrived(1)
    assert alert.headers["X-Appliance-Event"] == "breakglass.account_locked"
    assert "text" in json.loads(alert.body)


async def test_no_target_no_alert(
    client: Client, superuser: asyncpg.Connection, account: Account
) -> None:
    await client.post(
        f"/o/{account.org}/breakglass/activate", json=activation_body(account), scope_base=source()
    )
    count = await superuser.fetchval(
        "SELECT count(*) FROM breakglass_alerts WHERE org_id = $1", account.org_id
    )
    assert count == 0
