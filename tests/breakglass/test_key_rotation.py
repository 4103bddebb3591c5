"""Rotation of the break-glass key on request, performed by the break-glass plane."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from appliance.clock import FrozenClock
from tests.breakglass.conftest import Account, activation_body, source


@pytest.fixture(autouse=True)
async def fresh_job_schedule(superuser: asyncpg.Connection) -> None:
    """Each test has its own frozen clock, so another test's schedule would not be due."""
    await superuser.execute(
        "DELETE FROM job_schedule WHERE name = 'breakglass.keys.rotation-requests'"
    )


async def test_requested_rotation_switches_signing_key(
    client: Client, superuser: asyncpg.Connection, account: Account, clock: FrozenClock
) -> None:
    url = f"/o/{account.org}/breakglass/activate"
    first = await (
        await client.post(url, json=activation_body(account), scope_base=source())
    ).get_json()
    request_id = await superuser.fetchval(
        "INSERT INTO key_rotation_requests (org_id, plane, requested_by, requested_at, reason) "
        "VALUES ($1, 'breakglass', 'security-team', now(), 'suspected leak') RETURNING id",
        account.org_id,
    )
    clock.advance(30)
    for _ in range(100):
        row = await superuser.fetchrow(
            "SELECT status, new_kid FROM key_rotation_requests WHERE id = $1", request_id
        )
        if row["status"] == "completed":
            break
        await asyncio.sleep(0.1)
    assert row["status"] == "completed"
    assert row["new_kid"] != first["kid"]
    second = await (
        await client.post(url, json=activation_body(account), scope_base=source())
    ).get_json()
    assert second["kid"] == row["new_kid"]
    jwks = await (await client.get(f"/o/{account.org}/breakglass/jwks.json")).get_json()
    published = {key["kid"] for key in jwks["keys"]}
    # The retired key stays published: credentials it signed are still valid.
    assert {first["kid"], second["kid"]} <= published
    statuses = dict(
        await superuser.fetch(
            "SELECT kid, status FROM signing_keys WHERE org_id = $1 AND plane = 'breakglass'",
            account.org_id,
        )
    )
    assert statuses[first["kid"]] == "retired"
    assert statuses[second["kid"]] == "active"
