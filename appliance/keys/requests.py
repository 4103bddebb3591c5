"""Key rotations requested through the admin plane, performed by the owning plane.

Private keys are generated only inside the plane that owns them, so the admin
plane records a request and this job, running in that plane under its
advisory lock, rotates the key at once (`rotate_org(force=True)`): the next
key becomes active, the old one stays published for `retired_overlap`.
"""

from __future__ import annotations

from appliance.db.queries.jobs import JOB_ORG_IDS
from appliance.db.queries.key_requests import ROTATION_REQUEST_COMPLETE, ROTATION_REQUESTS_PENDING
from appliance.db.tenancy import set_org
from appliance.jobs import Job, JobContext
from appliance.keys.rotation import RotationPolicy, rotate_org
from appliance.keys.signing import SigningKeyStore

JOB_INTERVAL_SECONDS = 5.0


def rotation_requests_job(store: SigningKeyStore, policy: RotationPolicy) -> Job:
    """Build the job that performs pending rotation requests for `store.plane`, in every org."""

    async def run(ctx: JobContext) -> int:
        handled = 0
        for org in await ctx.conn.fetch(JOB_ORG_IDS):
            await set_org(ctx.conn, org["id"])
            requests = await ctx.conn.fetch(ROTATION_REQUESTS_PENDING, org["id"], store.plane)
            if not requests:
                continue
            result = await rotate_org(
                ctx.conn,
                store,
                org["id"],
                policy=policy,
                now=ctx.now,
                force=True,
                actor=requests[0]["requested_by"],
            )
            for request in requests:
                await ctx.conn.execute(
                    ROTATION_REQUEST_COMPLETE, request["id"], ctx.now, result.activated
                )
                handled += 1
        return handled

    return Job(f"{store.plane}.keys.rotation-requests", JOB_INTERVAL_SECONDS, run)
