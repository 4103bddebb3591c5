"""The PIM plane's jobs: expiry of requests, activation and end of grants, notifications."""

from __future__ import annotations

import json
import secrets

import asyncpg
from quart import Quart

from appliance.db.tenancy import transaction
from appliance.jobs import JobContext, JobFunction
from appliance.keys.sealing import sealing_private_key
from appliance.notify.delivery import UrllibSender, delivery_job
from appliance.pim.jobs import advance_grants, expire_requests, status_list_job
from appliance.settings import Plane
from tests.conftest import Database
from tests.notify.receiver import webhook_receiver
from tests.notify.test_delivery import add_webhook
from tests.pim.conftest import World, audit_events, holder


async def run_job(app: Quart, world: World, job: JobFunction) -> int:
    pool = app.extensions["pools"]["pim"]
    async with transaction(pool) as conn:
        return await job(JobContext(conn, pool, world.clock.now, "pim"))


async def test_pending_request_expires(
    app: Quart, world: World, superuser: asyncpg.Connection
) -> None:
    created = await world.request()
    world.clock.advance(3600)
    await run_job(app, world, expire_requests)
    events = await audit_events(superuser, world.org_id, "pim.request.expired")
    assert [json.loads(e["data"])["request_id"] for e in events] == [created["id"]]
    status = await superuser.fetchval(
        "SELECT status FROM pim_requests WHERE id = $1", created["id"]
    )
    assert status == "expired"
    await run_job(app, world, expire_requests)
    assert len(await audit_events(superuser, world.org_id, "pim.request.expired")) == 1


async def test_grant_activates_warns_and_ends(
    app: Quart, world: World, superuser: asyncpg.Connection
) -> None:
    start = int(world.clock.now.timestamp()) + 600
    created = await world.request(start=start, duration_seconds=1800)
    await world.call("bob", "POST", f"requests/{created['id']}/approve")
    await world.call("carol", "POST", f"requests/{created['id']}/approve")
    await run_job(app, world, advance_grants)
    assert await audit_events(superuser, world.org_id, "pim.grant.activated") == []

    world.clock.advance(600)
    await run_job(app, world, advance_grants)
    assert len(await audit_events(superuser, world.org_id, "pim.grant.activated")) == 1
    world.clock.advance(1800 - 200)
    await run_job(app, world, advance_grants)
    await run_job(app, world, advance_grants)
    assert len(await audit_events(superuser, world.org_id, "pim.grant.expiring_soon")) == 1
    world.clock.advance(200)
    await run_job(app, world, advance_grants)
    row = await superuser.fetchrow(
        "SELECT status, end_reason FROM pim_requests WHERE id = $1", created["id"]
    )
    assert (row["status"], row["end_reason"]) == ("ended", "expired")


async def test_status_list_job_signs_outdated_lists(
    app: Quart, world: World, superuser: asyncpg.Connection
) -> None:
    created = await world.request()
    await world.call("bob", "POST", f"requests/{created['id']}/approve")
    await world.call("carol", "POST", f"requests/{created['id']}/approve")
    await world.call(
        "alice", "POST", f"requests/{created['id']}/credential", {"holder_jwk": holder()[1]}
    )
    await world.call("bob", "POST", f"requests/{created['id']}/revoke")
    job = status_list_job(app.extensions["pim"])
    assert await run_job(app, world, job.run) >= 1
    row = await superuser.fetchrow(
        "SELECT version, token_version FROM pim_status_lists WHERE org_id = $1", world.org_id
    )
    assert row["token_version"] == row["version"]


async def test_flow_notifies_webhook(
    app: Quart, world: World, database: Database, superuser: asyncpg.Connection
) -> None:
    with webhook_receiver() as receiver:
        await add_webhook(database, superuser, world.org_id, receiver.url)
        created = await world.request()
        await world.call("bob", "POST", f"requests/{created['id']}/approve")
        await world.call("carol", "POST", f"requests/{created['id']}/approve")
        await world.call("carol", "POST", f"requests/{created['id']}/revoke")
        seal_key = sealing_private_key(database.master_secrets[Plane.PIM], "pim")
        job = delivery_job(seal_key, UrllibSender(timeout=2.0), name=f"test.{secrets.token_hex(4)}")
        await run_job(app, world, job.run)
        types = sorted(r.headers["X-Appliance-Event"] for r in receiver.received)
        assert types == [
            "pim.grant.activated",
            "pim.grant.revoked",
            "pim.request.approved",
            "pim.request.created",
        ]
        assert all(
            json.loads(r.body)["data"]["request_id"] == created["id"] for r in receiver.received
        )
