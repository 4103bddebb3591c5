"""The PIM plane's jobs, run by every replica under advisory locks (appliance/jobs.py).

- `pim.expire-requests`: pending requests past their wait become `expired`.
- `pim.grants`: grants whose start has come are activated, grants ending within
  `EXPIRING_SOON_SECONDS` are announced once, grants past their end become
  `ended` (`expired`).
- `pim.status-lists`: outdated or aging status list tokens are signed again,
  so a fetch rarely pays for signing.
- `notify.deliver`: webhook deliveries (appliance/notify/delivery.py).

Credential issuance and verification never wait for these jobs: they compare
the grant's times with `now` themselves. The jobs move the stored state, audit
it and notify.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from appliance.db.queries.jobs import JOB_ORG_IDS
from appliance.db.queries.pim import (
    PIM_GRANTS_ACTIVATE_DUE,
    PIM_GRANTS_END_DUE,
    PIM_GRANTS_EXPIRING_SOON,
    PIM_REQUESTS_EXPIRE_DUE,
    PIM_STATUS_LIST_GET,
    PIM_STATUS_LISTS_STALE,
)
from appliance.db.tenancy import set_org
from appliance.jobs import Job, JobContext
from appliance.notify import outbox
from appliance.notify.delivery import Sender, delivery_job
from appliance.pim.audit import audit
from appliance.pim.model import iso
from appliance.pim.service import PimService
from appliance.pim.status_lists import REFRESH_AFTER_SECONDS, sign_and_store

EXPIRING_SOON_SECONDS: Final = 5 * 60
REQUEST_JOB_INTERVAL_SECONDS: Final = 10.0
GRANT_JOB_INTERVAL_SECONDS: Final = 10.0
STATUS_LIST_JOB_INTERVAL_SECONDS: Final = 30.0


async def expire_requests(ctx: JobContext) -> int:
    handled = 0
    for org in await ctx.conn.fetch(JOB_ORG_IDS):
        await set_org(ctx.conn, org["id"])
        for row in await ctx.conn.fetch(PIM_REQUESTS_EXPIRE_DUE, org["id"], ctx.now):
            data = {
                "request_id": str(row["id"]),
                "role": row["role"],
                "requester": row["requester"],
                "expired_at": iso(row["expires_at"]),
            }
            await audit(
                ctx.conn,
                org["id"],
                "pim.request.expired",
                actor="system",
                subject=str(row["id"]),
                now=ctx.now,
                data=data,
            )
            await outbox.enqueue(
                ctx.conn,
                org["id"],
                event_type=outbox.REQUEST_EXPIRED,
                subject=str(row["id"]),
                data=data,
                now=ctx.now,
            )
            handled += 1
    return handled


async def advance_grants(ctx: JobContext) -> int:
    handled = 0
    soon = ctx.now + timedelta(seconds=EXPIRING_SOON_SECONDS)
    steps = (
        (PIM_GRANTS_ACTIVATE_DUE, (ctx.now,), "pim.grant.activated", outbox.GRANT_ACTIVATED),
        (
            PIM_GRANTS_EXPIRING_SOON,
            (ctx.now, soon),
            "pim.grant.expiring_soon",
            outbox.GRANT_EXPIRING_SOON,
        ),
        (PIM_GRANTS_END_DUE, (ctx.now,), "pim.grant.ended", outbox.GRANT_ENDED),
    )
    for org in await ctx.conn.fetch(JOB_ORG_IDS):
        await set_org(ctx.conn, org["id"])
        for statement, arguments, event_type, notification in steps:
            for row in await ctx.conn.fetch(statement, org["id"], *arguments):
                data = {
                    "request_id": str(row["id"]),
                    "role": row["role"],
                    "requester": row["requester"],
                    "ends_at": iso(row["ends_at"]),
                }
                await audit(
                    ctx.conn,
                    org["id"],
                    event_type,
                    actor="system",
                    subject=str(row["id"]),
                    now=ctx.now,
                    data=data,
                )
                await outbox.enqueue(
                    ctx.conn,
                    org["id"],
                    event_type=notification,
                    subject=str(row["id"]),
                    data=data,
                    now=ctx.now,
                )
                handled += 1
    return handled


def status_list_job(service: PimService) -> Job:
    async def publish(ctx: JobContext) -> int:
        handled = 0
        older_than = ctx.now - timedelta(seconds=REFRESH_AFTER_SECONDS)
        for org in await ctx.conn.fetch(JOB_ORG_IDS):
            await set_org(ctx.conn, org["id"])
            for stale in await ctx.conn.fetch(PIM_STATUS_LISTS_STALE, org["id"], older_than):
                row = await ctx.conn.fetchrow(PIM_STATUS_LIST_GET, org["id"], stale["id"])
                assert row is not None
                await sign_and_store(
                    ctx.conn,
                    org["id"],
                    row,
                    issuer=service.issuer(org["name"]),
                    keys=service.keys,
                    now=ctx.now,
                )
                handled += 1
        return handled

    return Job("pim.status-lists", STATUS_LIST_JOB_INTERVAL_SECONDS, publish)


def pim_jobs(service: PimService, sender: Sender) -> list[Job]:
    return [
        Job("pim.expire-requests", REQUEST_JOB_INTERVAL_SECONDS, expire_requests),
        Job("pim.grants", GRANT_JOB_INTERVAL_SECONDS, advance_grants),
        status_list_job(service),
        delivery_job(service.seal_key, sender, plane="pim"),
    ]
