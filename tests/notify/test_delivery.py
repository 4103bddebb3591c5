"""Webhook delivery from the transactional outbox: signature, retries, dead letter, formats."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from appliance.clock import FrozenClock
from appliance.db.tenancy import set_org
from appliance.jobs import JobRunner
from appliance.keys.sealing import sealing_private_key
from appliance.notify import outbox
from appliance.notify.delivery import MAX_ATTEMPTS, UrllibSender, backoff_seconds, delivery_job
from appliance.notify.webhooks import create_webhook, verify_signature
from appliance.settings import Plane
from tests.conftest import Database, create_org
from tests.notify.receiver import Receiver, webhook_receiver

SECRET = "webhook-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
async def pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database.dsn(Plane.PIM), min_size=1, max_size=2)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


async def add_webhook(
    database: Database,
    superuser: asyncpg.Connection,
    org_id: UUID,
    url: str,
    payload_format: str = "json",
) -> UUID:
    public = bytes(sealing_private_key(database.master_secrets[Plane.PIM], "pim").public_key)
    async with superuser.transaction():
        await set_org(superuser, org_id)
        return await create_webhook(
            superuser,
            org_id,
            url=url,
            secret=SECRET,
            pim_seal_public_key=public,
            actor="tests",
            now=datetime.now(UTC),
            payload_format=payload_format,
        )


async def emit(
    superuser: asyncpg.Connection, org_id: UUID, now: datetime, *, rollback: bool = False
) -> None:
    data = {
        "request_id": "r-1",
        "role": "prod-db-admin",
        "requester": "alice",
        "duration_seconds": 1800,
        "justification": "rotate keys",
        "ticket": "CHG-1",
    }
    transaction = superuser.transaction()
    await transaction.start()
    await set_org(superuser, org_id)
    await outbox.enqueue(
        superuser, org_id, event_type=outbox.REQUEST_CREATED, subject="r-1", data=data, now=now
    )
    if rollback:
        await transaction.rollback()
    else:
        await transaction.commit()


def runner(database: Database, pool: asyncpg.Pool, clock: FrozenClock) -> tuple[JobRunner, object]:
    seal_key = sealing_private_key(database.master_secrets[Plane.PIM], "pim")
    # A name of its own, so the schedule of another test's job never makes this one not due.
    job = delivery_job(
        seal_key, UrllibSender(timeout=2.0), name=f"test.deliver.{secrets.token_hex(4)}"
    )
    return JobRunner(pool, [job], clock=clock, plane="pim"), job


async def deliveries(superuser: asyncpg.Connection, org_id: UUID) -> list[asyncpg.Record]:
    return await superuser.fetch(
        "SELECT status, attempts, next_attempt_at, last_http_status FROM notify_deliveries "
        "WHERE org_id = $1",
        org_id,
    )


async def test_delivery_is_signed_json(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, receiver.url)
    await emit(superuser, org_id, clock.now)
    jobs, job = runner(database, pool, clock)
    await jobs.run_once(job)  # type: ignore[arg-type]

    assert len(receiver.received) == 1
    got = receiver.received[0]
    verify_signature(
        SECRET.encode(),
        got.headers["X-Appliance-Signature"],
        got.body,
        now=int(clock.now.timestamp()),
    )
    with pytest.raises(ValueError, match="does not match"):
        verify_signature(
            b"another-secret-xxxxxxx",
            got.headers["X-Appliance-Signature"],
            got.body,
            now=int(clock.now.timestamp()),
        )
    with pytest.raises(ValueError, match="does not match"):
        verify_signature(
            SECRET.encode(),
            got.headers["X-Appliance-Signature"],
            got.body + b" ",
            now=int(clock.now.timestamp()),
        )
    body = json.loads(got.body)
    assert body["type"] == "pim.request.created"
    assert body["data"]["requester"] == "alice"
    assert got.headers["X-Appliance-Event"] == "pim.request.created"
    assert [row["status"] for row in await deliveries(superuser, org_id)] == ["delivered"]


async def test_rolled_back_change_sends_nothing(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, receiver.url)
    await emit(superuser, org_id, clock.now, rollback=True)
    jobs, job = runner(database, pool, clock)
    await jobs.run_once(job)  # type: ignore[arg-type]
    assert receiver.received == []
    assert await deliveries(superuser, org_id) == []


async def test_failures_retry_with_backoff(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, receiver.url)
    await emit(superuser, org_id, clock.now)
    receiver.statuses = [500, 503]
    jobs, job = runner(database, pool, clock)

    await jobs.run_once(job)  # type: ignore[arg-type]
    [row] = await deliveries(superuser, org_id)
    assert (row["status"], row["attempts"], row["last_http_status"]) == ("pending", 1, 500)
    assert row["next_attempt_at"] == clock.now + timedelta(seconds=backoff_seconds(1))

    clock.advance(backoff_seconds(1) - 1)  # not yet due
    await jobs.run_once(job)  # type: ignore[arg-type]
    assert len(receiver.received) == 1

    for attempt in (1, 2):
        clock.advance(backoff_seconds(attempt) + 1)
        await jobs.run_once(job)  # type: ignore[arg-type]
    [row] = await deliveries(superuser, org_id)
    assert (row["status"], row["attempts"]) == ("delivered", 3)
    assert len(receiver.received) == 3
    ids = {r.headers["X-Appliance-Delivery"] for r in receiver.received}
    assert len(ids) == 1  # the same delivery id on every retry


async def test_dead_letter_after_max_attempts(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, receiver.url)
    await emit(superuser, org_id, clock.now)
    receiver.statuses = [500] * (MAX_ATTEMPTS + 5)
    jobs, job = runner(database, pool, clock)
    for attempt in range(1, MAX_ATTEMPTS + 3):
        await jobs.run_once(job)  # type: ignore[arg-type]
        clock.advance(backoff_seconds(attempt) + 1)
    [row] = await deliveries(superuser, org_id)
    assert (row["status"], row["attempts"]) == ("dead", MAX_ATTEMPTS)
    assert len(receiver.received) == MAX_ATTEMPTS
    dead = await superuser.fetch(
        "SELECT failure_reason FROM audit_events "
        "WHERE org_id = $1 AND event_type = 'notify.delivery_dead'",
        org_id,
    )
    assert [r["failure_reason"] for r in dead] == ["max_attempts"]


async def test_redirect_is_a_failed_delivery(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, receiver.url)
    receiver.redirect_to = "http://127.0.0.1:9/elsewhere"
    await emit(superuser, org_id, clock.now)
    jobs, job = runner(database, pool, clock)
    await jobs.run_once(job)  # type: ignore[arg-type]
    [row] = await deliveries(superuser, org_id)
    assert (row["status"], row["last_http_status"]) == ("pending", 307)


async def test_slack_payload(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receiver: Receiver,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, receiver.url, payload_format="slack")
    await emit(superuser, org_id, clock.now)
    jobs, job = runner(database, pool, clock)
    await jobs.run_once(job)  # type: ignore[arg-type]
    body = json.loads(receiver.received[0].body)
    assert body["text"].startswith("alice requests *prod-db-admin* for 30 min: rotate keys")
    assert "(ticket CHG-1)" in body["text"]
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"


async def test_unreachable_receiver_is_retried(
    database: Database,
    superuser: asyncpg.Connection,
    pool: asyncpg.Pool,
    clock: FrozenClock,
) -> None:
    org_id, _ = await create_org(superuser)
    await add_webhook(database, superuser, org_id, "http://127.0.0.1:9/closed-port")
    await emit(superuser, org_id, clock.now)
    jobs, job = runner(database, pool, clock)
    await jobs.run_once(job)  # type: ignore[arg-type]
    [row] = await deliveries(superuser, org_id)
    assert (row["status"], row["attempts"], row["last_http_status"]) == ("pending", 1, None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "ftp://x", "secret": SECRET}, "absolute http"),
        ({"url": "http://x", "secret": "short"}, "at least 16"),
        ({"url": "http://x", "secret": SECRET, "payload_format": "xml"}, "json or slack"),
        ({"url": "http://x", "secret": SECRET, "events": ["pim.unknown"]}, "unknown or no event"),
    ],
)
async def test_webhook_rejects_bad_configuration(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=match):
        await create_webhook(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            pim_seal_public_key=b"",
            actor="tests",
            now=datetime.now(UTC),
            **kwargs,
        )
