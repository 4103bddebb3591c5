"""The advisory-locked job runner: N replicas run each slot of a job once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from appliance.clock import FrozenClock
from appliance.jobs import Job, JobContext, JobRunner, Outcome
from appliance.settings import Plane
from tests.conftest import Database

INTERVAL = 10.0


@pytest.fixture
async def pools(database: Database) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two pools, as two replicas of the PIM plane would have."""
    created = [
        await asyncpg.create_pool(database.dsn(Plane.PIM), min_size=1, max_size=4) for _ in range(2)
    ]
    try:
        yield created
    finally:
        for pool in created:
            await pool.close()


class Recorder:
    """A job body that records each run and fails the test if two runs overlap."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []
        self.running = 0
        self.overlaps = 0

    def job(self, name: str) -> Job:
        async def run(ctx: JobContext) -> int:
            self.running += 1
            if self.running > 1:
                self.overlaps += 1
            try:
                await asyncio.sleep(0.02)  # long enough for the other replica to try meanwhile
                self.runs.append((ctx.plane, ctx.now))
            finally:
                self.running -= 1
            return 1

        return Job(name, INTERVAL, run)


async def test_two_replicas_never_run_one_slot_twice(pools: list[asyncpg.Pool]) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    recorder = Recorder()
    job = recorder.job(f"test.{secrets.token_hex(4)}")
    replicas = [
        JobRunner(pool, [job], clock=clock, plane=f"replica-{index}")
        for index, pool in enumerate(pools)
    ]
    slots = 6
    for _ in range(slots):
        results = await asyncio.gather(
            *(runner.run_once(job) for runner in replicas for _ in range(3))
        )
        outcomes = [result.outcome for result in results]
        assert outcomes.count(Outcome.RAN) == 1, outcomes
        assert set(outcomes) <= {Outcome.RAN, Outcome.LOCKED, Outcome.NOT_DUE}
        # Within the interval every replica finds the slot taken.
        again = await asyncio.gather(*(runner.run_once(job) for runner in replicas))
        assert Outcome.RAN not in {result.outcome for result in again}
        clock.advance(INTERVAL)

    assert len(recorder.runs) == slots
    assert len({moment for _, moment in recorder.runs}) == slots
    assert recorder.overlaps == 0


async def test_failed_run_is_retried_in_same_slot(pools: list[asyncpg.Pool]) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    attempts: list[datetime] = []

    async def flaky(ctx: JobContext) -> int:
        attempts.append(ctx.now)
        if len(attempts) == 1:
            raise RuntimeError("simulated failure")
        return 1

    job = Job(f"test.{secrets.token_hex(4)}", INTERVAL, flaky)
    runner = JobRunner(pools[0], [job], clock=clock, plane="replica-0")
    with pytest.raises(RuntimeError):
        await runner.run_once(job)
    # The schedule change rolled back with the failure, so the slot is still due.
    assert (await runner.run_once(job)).outcome is Outcome.RAN
    assert attempts == [clock.now, clock.now]


async def test_lock_is_held_for_the_whole_run(pools: list[asyncpg.Pool]) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    name = f"test.{secrets.token_hex(4)}"
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(ctx: JobContext) -> int:
        started.set()
        await release.wait()
        return 1

    job = Job(name, INTERVAL, slow)
    first = asyncio.create_task(JobRunner(pools[0], [job], clock=clock, plane="a").run_once(job))
    await started.wait()
    async with pools[1].acquire() as conn:
        taken = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('job:' || $1, 0))", name
        )
    assert taken is False
    release.set()
    assert (await first).outcome is Outcome.RAN


async def test_run_due_logs_failure_and_runs_other_jobs(
    pools: list[asyncpg.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    recorder = Recorder()

    async def broken(ctx: JobContext) -> int:
        raise ValueError("broken job")

    jobs = [
        Job(f"test.{secrets.token_hex(4)}", INTERVAL, broken),
        recorder.job(f"test.{secrets.token_hex(4)}"),
    ]
    results = await JobRunner(pools[0], jobs, clock=clock, plane="a").run_due()
    assert jobs[0].name not in results
    assert results[jobs[1].name].outcome is Outcome.RAN
    assert any("job failed" in record.getMessage() for record in caplog.records)
