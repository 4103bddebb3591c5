"""The break-glass service: online activation, with offline fallback.

While PostgreSQL responds, activation runs online (`online.py`). When a
database call fails with a connection error or exceeds `ONLINE_DEADLINE`,
the service marks the database down and serves from the sealed snapshot
(`offline.py`) until a background probe reaches PostgreSQL again. Then it
replays the journal (`replay.py`) and refreshes the snapshot. The probe also
refreshes the snapshot whenever the change counter moves, and at least every
`SNAPSHOT_MAX_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from appliance.breakglass.alerts import OfflineAlerts, alerts_job
from appliance.breakglass.issuance import Activation
from appliance.breakglass.journal import Journal, JournalCorrupt
from appliance.breakglass.offline import NoSnapshot, OfflineActivator
from appliance.breakglass.online import (
    SOURCE_WINDOW_SECONDS,
    Attempt,
    RecordedFailure,
    activate_online,
)
from appliance.breakglass.replay import replay_journal
from appliance.breakglass.request import ActivationRequest
from appliance.breakglass.snapshot import Org, SnapshotCorrupt, SnapshotFile, read_snapshot_from_db
from appliance.clock import Clock
from appliance.db.errors import DATABASE_UNAVAILABLE
from appliance.db.queries.breakglass import SNAPSHOT_VERSION
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.db.queries.orgs import ORG_BY_NAME
from appliance.db.tenancy import connection, org_transaction
from appliance.errors import ActivationFailed, NotFound, RateLimited, ServiceUnavailable
from appliance.jobs import JobRunner
from appliance.keys.envelope import derive_key
from appliance.keys.requests import rotation_requests_job
from appliance.keys.rotation import RotationPolicy
from appliance.keys.sealing import sealing_private_key
from appliance.keys.signing import SigningKeyStore, published_jwks
from appliance.log import log_fields
from appliance.notify.delivery import Sender, UrllibSender

log = logging.getLogger("appliance.breakglass")

PLANE = "breakglass"
# An online attempt that takes longer than this is abandoned for the offline
# path: an on-call engineer waits seconds at most, even when the database
# stalls instead of refusing connections.
ONLINE_DEADLINE = 3.0
# Online attempts per activation while an attempt times out but a probe reaches PostgreSQL.
ONLINE_ATTEMPTS = 2
PROBE_INTERVAL = 2.0
# Seconds `stop` waits for cancelled background tasks before shutdown goes on.
STOP_TIMEOUT = 1.5
PROBE_TIMEOUT = 1.0
SNAPSHOT_MAX_INTERVAL = 60.0
ALERT_INTERVAL = 1.0
# Break-glass keys rotate when an operator asks (after a suspected compromise,
# or routinely). A retired key stays published for the longest credential
# lifetime (1 hour) plus clock skew and JWKS caching.
KEY_ROTATION_POLICY = RotationPolicy(
    rotate_after=timedelta(days=90),
    next_key_lead=timedelta(0),
    retired_overlap=timedelta(minutes=70),
)


class BreakglassService:
    """Activations for every org, with the break-glass plane's pool, keys and data folder."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        master_secret: bytes,
        *,
        database_url: str,
        public_url: str,
        clock: Clock,
        data_dir: Path | None = None,
        snapshot_max_age: float = 24 * 3600,
        stale_ttl: int = 5 * 60,
        sender: Sender | None = None,
    ) -> None:
        self.pool = pool
        self.database_url = database_url
        self.keys = SigningKeyStore(PLANE, master_secret)
        self.public_url = public_url
        self.clock = clock
        self._seal_key = sealing_private_key(master_secret, PLANE)
        self._source_key = derive_key(master_secret, plane=PLANE, purpose="source-address-hmac")
        self.database_up = True
        self.last_database_error: str | None = None
        self.problem: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.journal: Journal | None = None
        self.snapshot_file: SnapshotFile | None = None
        self.offline: OfflineActivator | None = None
        self.offline_alerts: OfflineAlerts | None = None
        self.sender: Sender = sender or UrllibSender()
        self.jobs = JobRunner(
            pool,
            [
                alerts_job(self._seal_key, self.sender),
                rotation_requests_job(self.keys, KEY_ROTATION_POLICY),
            ],
            clock=clock,
            plane=PLANE,
        )
        if data_dir is not None:
            self.snapshot_file = SnapshotFile(data_dir, master_secret)
            try:
                self.journal = Journal(data_dir, master_secret)
            except JournalCorrupt as error:
                self._refuse_offline(f"journal corrupt: {error}")
            else:
                self.offline_alerts = OfflineAlerts(self.journal, self._seal_key, self.sender)
                self.offline = OfflineActivator(
                    journal=self.journal,
                    master_secret=master_secret,
                    seal_key=self._seal_key,
                    issuer_for=self.issuer,
                    max_age_seconds=snapshot_max_age,
                    stale_ttl_seconds=stale_ttl,
                    alerts=self.offline_alerts,
                )

    def _refuse_offline(self, problem: str) -> None:
        self.problem = problem
        self.offline = None
        log.error("degraded mode disabled", extra=log_fields(problem=problem))

    @property
    def seal_public_key(self) -> bytes:
        return bytes(self._seal_key.public_key)

    def issuer(self, org_name: str) -> str:
        return f"{self.public_url}/o/{org_name}/breakglass"

    def source_hash(self, address: str) -> str:
        """Keyed hash of a client address: comparable across requests, not reversible."""
        return hmac.new(self._source_key, address.encode(), hashlib.sha256).hexdigest()[:32]

    # Lifecycle

    async def start(self) -> None:
        """Load the snapshot from disk and start the database probe."""
        if self.snapshot_file is not None and self.offline is not None:
            try:
                snapshot = await asyncio.to_thread(self.snapshot_file.read)
            except SnapshotCorrupt as error:
                # Refuse to serve from it; a fresh snapshot from the database replaces it.
                log.error("snapshot unusable", extra=log_fields(problem=str(error)))
                self.problem = f"snapshot corrupt: {error}"
                snapshot = None
            assert self.journal is not None
            entries = await asyncio.to_thread(list, self.journal.entries())
            if snapshot is not None:
                later = [
                    e
                    for e in entries
                    if e.body.get("event", {}).get("occurred_at", 0) >= snapshot.taken_at
                ]
                self.offline.install(snapshot, later)
                log.info(
                    "snapshot loaded",
                    extra=log_fields(taken_at=int(snapshot.taken_at), orgs=len(snapshot.orgs)),
                )
            if self.offline_alerts is not None:
                self.offline_alerts.load(entries, self.journal.replayed_through())
        self._tasks.append(asyncio.create_task(self._probe_loop(), name="breakglass-probe"))
        self._tasks.append(asyncio.create_task(self._alert_loop(), name="breakglass-alerts"))

    async def stop(self) -> None:
        """Cancel the background tasks, waiting at most `STOP_TIMEOUT` for them to end.

        A task blocked on a stalled PostgreSQL connection may not end promptly, and
        the pool is cut after this anyway.
        """
        for task in self._tasks:
            task.cancel()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        if pending:
            log.warning(
                "background tasks still running at shutdown",
                extra=log_fields(tasks=sorted(task.get_name() for task in pending)),
            )

    def _mark_down(self, error: BaseException) -> None:
        self.last_database_error = type(error).__name__
        if self.database_up:
            self.database_up = False
            log.warning(
                "database unreachable; serving from the snapshot",
                extra=log_fields(error=type(error).__name__, detail=str(error)[:200]),
            )

    async def _probe_loop(self) -> None:
        version: int | None = None
        refreshed_at = 0.0
        published = False
        while True:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    async with connection(self.pool) as conn:
                        current = await conn.fetchval(SNAPSHOT_VERSION)
                if not self.database_up:
                    self.database_up = True
                    log.info("database reachable again")
                if not published:
                    async with connection(self.pool) as conn:
                        await conn.execute(SEAL_KEY_UPSERT, PLANE, self.seal_public_key)
                    published = True
                # Replay and refresh fail independently: an entry that cannot be
                # replayed must not keep the snapshot from being refreshed.
                await self._replay()
                loop_time = asyncio.get_running_loop().time()
                if current != version or loop_time - refreshed_at > SNAPSHOT_MAX_INTERVAL:
                    await self.refresh_snapshot()
                    version, refreshed_at = current, loop_time
            except DATABASE_UNAVAILABLE as error:
                self._mark_down(error)
            except asyncpg.PostgresError as error:
                log.error(
                    "snapshot refresh failed",
                    extra=log_fields(error=type(error).__name__, detail=str(error)[:200]),
                )
            await asyncio.sleep(PROBE_INTERVAL)

    async def _replay(self) -> None:
        if self.journal is None or not self.journal.backlog():
            return
        try:
            outcomes = self.offline_alerts.outcomes() if self.offline_alerts else {}
            result = await replay_journal(self.pool, self.journal, outcomes)
        except JournalCorrupt as error:
            self._refuse_offline(f"journal corrupt: {error}")
            return
        except DATABASE_UNAVAILABLE:
            raise
        except (asyncpg.PostgresError, ValueError, KeyError) as error:
            # The entry stays in the journal and replay stops there, keeping the
            # order; /readyz shows the problem until someone repairs it.
            self.problem = (
                f"journal entry {self.journal.replayed_through() + 1} cannot be replayed "
                f"({type(error).__name__}: {str(error)[:200]}); later entries wait behind it. "
                "Keep the journal file and see the database-outage runbook"
            )
            log.error("journal replay stopped", extra=log_fields(problem=self.problem))
            return
        if self.problem and self.problem.startswith("journal entry"):
            self.problem = None
        if self.offline_alerts is not None:
            self.offline_alerts.forget(result.event_ids)

    async def _alert_loop(self) -> None:
        """Send alerts: from the journal while any wait there, and through the job otherwise."""
        while True:
            try:
                if self.offline_alerts is not None and self.offline_alerts.alerts:
                    await self.offline_alerts.deliver_due(self.clock())
                if self.database_up:
                    await self.jobs.run_due()
            except DATABASE_UNAVAILABLE as error:
                self._mark_down(error)
            except JournalCorrupt as error:
                self._refuse_offline(f"journal corrupt: {error}")
            await asyncio.sleep(ALERT_INTERVAL)

    async def refresh_snapshot(self) -> None:
        """Read the state from PostgreSQL and write it to memory and disk."""
        if self.snapshot_file is None or self.offline is None:
            return
        async with connection(self.pool) as conn:
            snapshot = await read_snapshot_from_db(conn, self.keys, now=self.clock())
        await asyncio.to_thread(self.snapshot_file.write, snapshot)
        self.offline.install(snapshot, [])
        if self.problem and self.problem.startswith("snapshot corrupt"):
            self.problem = None

    # Activation

    async def activate(
        self, org_name: str, request: ActivationRequest, *, source: str
    ) -> Activation:
        source_hash = self.source_hash(source)
        # Factors are judged at arrival: a TOTP code that was current when the
        # request came in stays valid after a failed online attempt used up
        # seconds of its window.
        arrived = self.clock()
        for attempt_number in range(1, ONLINE_ATTEMPTS + 1):
            if not self.database_up:
                break
            try:
                return await self._activate_online(org_name, request, source_hash, arrived)
            except RecordedFailure as failure:
                raise _client_error(failure.reason) from None
            except DATABASE_UNAVAILABLE as error:
                if not (isinstance(error, TimeoutError) and await self._database_answers()):
                    self._mark_down(error)
                    break
                # The attempt timed out but a probe reaches PostgreSQL now: either a stall
                # ended while the attempt waited, which a second attempt gets past,
                # or the process is busy (hashing slots, pool). Load alone must not
                # switch the plane to its snapshot.
                # NOTE: if the timed-out attempt's COMMIT reached PostgreSQL, the retry
                # finds its TOTP code used and returns 401, though no credential was sent.
                if attempt_number == ONLINE_ATTEMPTS:
                    raise ServiceUnavailable(
                        "break-glass is busy; retry in a few seconds",
                        headers={"Retry-After": "2"},
                    ) from None
        return await self._activate_offline(org_name, request, source_hash, arrived)

    async def _activate_online(
        self, org_name: str, request: ActivationRequest, source_hash: str, arrived: datetime
    ) -> Activation:
        async with asyncio.timeout(ONLINE_DEADLINE):
            org_id = await self.org_id(org_name)
            attempt = Attempt(
                org_id, org_name, self.issuer(org_name), request, source_hash, arrived
            )
            activation, effects = await activate_online(
                self.pool, self.keys, self._seal_key, attempt
            )
        if self.offline is not None:
            self.offline.note_effects(org_name, effects)
        return activation

    async def _database_answers(self) -> bool:
        """Probe PostgreSQL on a new connection, bypassing a pool that may be exhausted."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                conn = await asyncpg.connect(self.database_url)
                try:
                    await conn.fetchval("SELECT 1")
                finally:
                    await conn.close()
            return True
        except DATABASE_UNAVAILABLE:
            return False

    async def _activate_offline(
        self, org_name: str, request: ActivationRequest, source_hash: str, arrived: datetime
    ) -> Activation:
        if self.offline is None:
            raise ServiceUnavailable(
                "the database is unreachable and degraded mode is unavailable"
                + (f" ({self.problem})" if self.problem else "")
                + "; retry when PostgreSQL is back"
            )
        try:
            return await self.offline.activate(
                org_name, request, source_hash=source_hash, now=arrived
            )
        except NoSnapshot:
            raise ServiceUnavailable(
                "the database is unreachable and no snapshot was taken yet; "
                "retry when PostgreSQL is back"
            ) from None
        except KeyError:
            raise NotFound(f"org {org_name!r} not found") from None
        except RecordedFailure as failure:
            raise _client_error(failure.reason) from None

    async def jwks(self, org_name: str) -> dict[str, Any]:
        """Return the org's published keys, from PostgreSQL or, while it is down, the snapshot."""
        if self.database_up:
            try:
                async with asyncio.timeout(ONLINE_DEADLINE):
                    org_id = await self.org_id(org_name)
                    async with org_transaction(self.pool, org_id) as conn:
                        return await published_jwks(conn, org_id, PLANE, now=self.clock())
            except DATABASE_UNAVAILABLE as error:
                self._mark_down(error)
        org = self._snapshot_org(org_name)
        return org.jwks

    async def check_org(self, org_name: str) -> None:
        """Raise NotFound unless the org exists (in the snapshot while PostgreSQL is down)."""
        if self.database_up:
            try:
                async with asyncio.timeout(ONLINE_DEADLINE):
                    await self.org_id(org_name)
                return
            except DATABASE_UNAVAILABLE as error:
                self._mark_down(error)
        self._snapshot_org(org_name)

    def _snapshot_org(self, org_name: str) -> Org:
        snapshot = self.offline.snapshot if self.offline else None
        if snapshot is None:
            raise ServiceUnavailable(
                "the database is unreachable and no snapshot is loaded; retry shortly"
            )
        org = snapshot.orgs.get(org_name)
        if org is None:
            raise NotFound(f"org {org_name!r} not found")
        return org

    async def org_id(self, org_name: str) -> UUID:
        async with connection(self.pool) as conn:
            row = await conn.fetchrow(ORG_BY_NAME, org_name)
        if row is None:
            raise NotFound(f"org {org_name!r} not found")
        org_id: UUID = row["id"]
        return org_id

    # Observability

    def status(self) -> dict[str, Any]:
        """Readiness details: database state, snapshot time and age, journal backlog."""
        now = self.clock()
        snapshot = self.offline.snapshot if self.offline else None
        status: dict[str, Any] = {
            "database": "reachable" if self.database_up else "unreachable",
            "snapshot_taken_at": _iso(snapshot.taken_at) if snapshot else None,
            "snapshot_age_seconds": int(now.timestamp() - snapshot.taken_at) if snapshot else None,
            "journal_backlog": self.journal.backlog() if self.journal else None,
        }
        if self.problem:
            status["problem"] = self.problem
        if not self.database_up:
            status["mode"] = (
                f"database unreachable, serving from snapshot of {status['snapshot_taken_at']}"
                if snapshot and self.offline
                else "database unreachable and no usable snapshot: activation unavailable"
            )
        return status

    def ready(self) -> bool:
        return self.database_up or (self.offline is not None and self.offline.snapshot is not None)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _client_error(reason: str) -> Exception:
    if reason == "rate_limited":
        return RateLimited(
            "too many failed activations from this address; retry later",
            headers={"Retry-After": str(SOURCE_WINDOW_SECONDS)},
        )
    return ActivationFailed(
        "activation failed: check the account name, passphrase and current TOTP code "
        "(and the second custodian's code for two-person accounts); "
        "repeated failures lock the account"
    )
