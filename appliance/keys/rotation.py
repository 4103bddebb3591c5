"""Scheduled signing-key rotation: publish the next key before it signs, keep the old one published.

Each org's key set for a plane moves through `next` -> `active` -> `retired`:

- a `next` key is published in the JWKS but signs nothing, so relying
  parties that cache the JWKS already know it when it starts signing;
- rotation promotes the `next` key once the active key is older than
  `rotate_after` and the `next` key has been published for `next_key_lead`,
  then creates a new `next` key;
- the retired key stays published for `retired_overlap`, which must cover the
  longest lifetime of a token it signed plus the time replicas keep using a
  cached active key.

The job runs in every replica. It takes `pg_try_advisory_xact_lock` inside
its own transaction, so one replica runs it at a time. A session lock taken
through the pool would not work, because returning the connection to the
pool releases it.
Within an org, `rotate_org` also takes the per-plane key lock, so the job, a
manual `appliance keys rotate` and first-key creation never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from appliance.audit.chain import AuditEvent, append
from appliance.clock import Clock
from appliance.db.queries.keys import SIGNING_KEY_LOCK_PLANE
from appliance.db.queries.oidc import (
    ROTATION_TRY_LOCK,
    SIGNING_KEY_PROMOTE,
    SIGNING_KEY_RETIRE,
    SIGNING_KEYS_CURRENT,
)
from appliance.db.queries.orgs import ORG_LIST
from appliance.db.tenancy import set_org, transaction
from appliance.keys.signing import SigningKeyStore
from appliance.log import log_fields

log = logging.getLogger("appliance.keys.rotation")

JOB_INTERVAL_SECONDS = 300.0
JOB_INITIAL_DELAY_SECONDS = 30.0


@dataclass(frozen=True)
class RotationPolicy:
    rotate_after: timedelta
    next_key_lead: timedelta
    retired_overlap: timedelta


@dataclass
class RotationResult:
    org_id: UUID
    retired: str | None = None
    activated: str | None = None
    created_next: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.retired or self.activated or self.created_next)


async def rotate_org(
    conn: asyncpg.Connection,
    store: SigningKeyStore,
    org_id: UUID,
    *,
    policy: RotationPolicy,
    now: datetime,
    force: bool = False,
    actor: str = "key-rotation-job",
) -> RotationResult:
    """Advance one org's keys of `store.plane`, in the caller's org-scoped transaction.

    Scheduled runs (`force=False`) leave orgs without an active key alone and
    rotate only when due. `force=True` rotates now: it promotes the `next`
    key even if it was published only moments ago, creating keys as needed.
    """
    await conn.execute(SIGNING_KEY_LOCK_PLANE, str(org_id), store.plane)
    rows = await conn.fetch(SIGNING_KEYS_CURRENT, org_id, store.plane)
    active = next((row for row in rows if row["status"] == "active"), None)
    pending = [row for row in rows if row["status"] == "next"]
    result = RotationResult(org_id)
    if active is None and not force:
        return result
    if not pending:
        key = await store.create(conn, org_id, status="next", now=now)
        result.created_next.append(key.kid)
        if not force:
            await _audit(conn, org_id, store.plane, result, now, actor)
            return result
        next_kid, next_created = key.kid, now
    else:
        next_kid, next_created = pending[0]["kid"], pending[0]["created_at"]
    if not force:
        assert active is not None
        due = active["activated_at"] is None or active["activated_at"] + policy.rotate_after <= now
        if not due or next_created + policy.next_key_lead > now:
            return result
    if active is not None:
        await conn.execute(
            SIGNING_KEY_RETIRE,
            org_id,
            store.plane,
            active["kid"],
            now,
            now + policy.retired_overlap,
        )
        result.retired = active["kid"]
    await conn.execute(SIGNING_KEY_PROMOTE, org_id, store.plane, next_kid, now)
    result.activated = next_kid
    key = await store.create(conn, org_id, status="next", now=now)
    result.created_next.append(key.kid)
    await _audit(conn, org_id, store.plane, result, now, actor)
    return result


async def _audit(
    conn: asyncpg.Connection,
    org_id: UUID,
    plane: str,
    result: RotationResult,
    now: datetime,
    actor: str,
) -> None:
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="keys.rotated" if result.activated else "keys.next_published",
            plane=plane,
            actor=actor,
            subject=plane,
            outcome="success",
            occurred_at=now,
            data={
                "retired": result.retired,
                "activated": result.activated,
                "next": result.created_next,
            },
        ),
    )


# Extra per-org upkeep run in the same job and transaction (for example purging expired rows).
OrgMaintenance = Callable[[asyncpg.Connection, UUID, datetime], Awaitable[None]]


async def run_rotation_once(
    pool: asyncpg.Pool,
    store: SigningKeyStore,
    *,
    policy: RotationPolicy,
    now: datetime,
    maintenance: OrgMaintenance | None = None,
) -> list[RotationResult] | None:
    """Rotate every org's keys of `store.plane`.

    Returns None when another replica holds the job lock.
    """
    results: list[RotationResult] = []
    async with transaction(pool) as conn:
        if not await conn.fetchval(ROTATION_TRY_LOCK, store.plane):
            return None
        for org in await conn.fetch(ORG_LIST):
            try:
                async with conn.transaction():
                    await set_org(conn, org["id"])
                    results.append(await rotate_org(conn, store, org["id"], policy=policy, now=now))
                    if maintenance is not None:
                        await maintenance(conn, org["id"], now)
            except (asyncpg.PostgresError, ValueError) as error:
                log.error(
                    "key rotation failed for one org; the others continue",
                    extra=log_fields(
                        org_id=str(org["id"]), plane=store.plane, error=type(error).__name__
                    ),
                )
    return results


async def run_rotation_forever(
    pool: asyncpg.Pool,
    store: SigningKeyStore,
    *,
    policy: RotationPolicy,
    clock: Clock,
    on_rotated: Callable[[UUID], None],
    maintenance: OrgMaintenance | None = None,
    interval: float = JOB_INTERVAL_SECONDS,
    initial_delay: float = JOB_INITIAL_DELAY_SECONDS,
) -> None:
    """Run `run_rotation_once` every `interval` seconds (with jitter) until cancelled."""
    await asyncio.sleep(initial_delay * random.uniform(0.5, 1.5))  # noqa: S311 (jitter, not a secret)
    while True:
        try:
            results = await run_rotation_once(
                pool, store, policy=policy, now=clock(), maintenance=maintenance
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning(
                "key rotation run failed; retrying at the next interval",
                extra=log_fields(plane=store.plane, error=type(error).__name__),
            )
        else:
            for result in results or []:
                if result.changed:
                    on_rotated(result.org_id)
                    log.info(
                        "signing keys rotated",
                        extra=log_fields(
                            plane=store.plane,
                            org_id=str(result.org_id),
                            retired=result.retired,
                            activated=result.activated,
                            next=result.created_next,
                        ),
                    )
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311
