"""Distributed jobs: every replica runs the loop, PostgreSQL decides who does the work.

A run happens inside one transaction on a pooled connection:

1. `pg_try_advisory_xact_lock` on the job's name. A replica that does not get
   the lock skips the run. The lock is transaction-scoped on purpose. asyncpg
   resets a connection (`pg_advisory_unlock_all()`) when it goes back to the
   pool, so a session lock taken through the pool would end as soon as the
   call returns, and two replicas could both believe they hold it.
2. Under the lock, `job_schedule.next_run_at` shows whether this slot is due.
   A replica that got the lock after another finished the slot finds it not
   due and skips, so N replicas run each slot once, not N times.
3. The job's work runs in that same transaction and commits with the new
   schedule; if it fails, both roll back and the slot is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from appliance.clock import Clock
from appliance.db.queries.jobs import (
    JOB_SCHEDULE_ENSURE,
    JOB_SCHEDULE_FINISHED,
    JOB_SCHEDULE_GET,
    JOB_SCHEDULE_STARTED,
    JOB_TRY_LOCK,
)
from appliance.db.tenancy import transaction
from appliance.log import log_fields

log = logging.getLogger("appliance.jobs")

# How often an idle runner looks for due jobs, in seconds. The job's own
# interval decides how often it actually runs.
POLL_SECONDS = 1.0
# Random delay added to each poll, so replicas started together do not all
# contend for the same lock at the same instant.
POLL_JITTER_SECONDS = 0.5


@dataclass(frozen=True)
class JobContext:
    """The arguments of a job run: the locked transaction's connection, the pool and `now`."""

    conn: asyncpg.Connection
    pool: asyncpg.Pool
    now: datetime
    plane: str


JobFunction = Callable[[JobContext], Awaitable[int]]


@dataclass(frozen=True)
class Job:
    """A named unit of work that runs at most once per `interval_seconds` across replicas.

    `run` returns how many items it handled, for the log and the tests.
    """

    name: str
    interval_seconds: float
    run: JobFunction


class Outcome(StrEnum):
    RAN = "ran"
    LOCKED = "locked"  # another replica holds the lock right now
    NOT_DUE = "not_due"  # another replica already ran this slot


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    handled: int = 0


class JobRunner:
    """Runs `jobs` on `pool` in this replica, each under its advisory lock."""

    def __init__(self, pool: asyncpg.Pool, jobs: list[Job], *, clock: Clock, plane: str) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique, got {names}")
        self.pool = pool
        self.jobs = jobs
        self.clock = clock
        self.plane = plane
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, job: Job) -> RunResult:
        """Run `job` if this replica gets its lock and its slot is due."""
        async with transaction(self.pool) as conn:
            locked = await conn.fetchval(JOB_TRY_LOCK, job.name)
            if not locked:
                return RunResult(Outcome.LOCKED)
            now = self.clock()
            await conn.execute(JOB_SCHEDULE_ENSURE, job.name, now)
            schedule = await conn.fetchrow(JOB_SCHEDULE_GET, job.name)
            assert schedule is not None
            if schedule["next_run_at"] > now:
                return RunResult(Outcome.NOT_DUE)
            next_run = now + timedelta(seconds=job.interval_seconds)
            await conn.execute(JOB_SCHEDULE_STARTED, job.name, next_run, now, self.plane)
            handled = await job.run(JobContext(conn, self.pool, now, self.plane))
            await conn.execute(JOB_SCHEDULE_FINISHED, job.name, self.clock())
        if handled:
            log.info("job ran", extra=log_fields(job=job.name, handled=handled, plane=self.plane))
        return RunResult(Outcome.RAN, handled)

    async def run_due(self) -> dict[str, RunResult]:
        """Try every job once; a failing job is logged and does not stop the others."""
        results: dict[str, RunResult] = {}
        for job in self.jobs:
            try:
                results[job.name] = await self.run_once(job)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error(
                    "job failed; it is retried at the next poll",
                    exc_info=error,
                    extra=log_fields(job=job.name, plane=self.plane, error=type(error).__name__),
                )
        return results

    async def _loop(self) -> None:
        log.info(
            "job runner started",
            extra=log_fields(plane=self.plane, jobs=[j.name for j in self.jobs]),
        )
        while True:
            await self.run_due()
            await asyncio.sleep(POLL_SECONDS + random.uniform(0, POLL_JITTER_SECONDS))  # noqa: S311

    def start(self) -> None:
        """Start the polling loop as a background task of the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"jobs-{self.plane}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("job runner stopped", extra=log_fields(plane=self.plane))
