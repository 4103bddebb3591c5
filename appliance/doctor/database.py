"""Database checks: reachability, PostgreSQL's clock and the age of each active signing key."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import asyncpg

from appliance.db.queries.doctor import DOCTOR_ACTIVE_KEYS, DOCTOR_NOW
from appliance.db.queries.orgs import ORG_LIST
from appliance.db.tenancy import set_org
from appliance.doctor.findings import RUNBOOK_DATABASE_OUTAGE, RUNBOOK_KEYS, Finding
from appliance.doctor.planes import MAX_CLOCK_SKEW_SECONDS

CONNECT_TIMEOUT_SECONDS = 5.0
# The auth plane rotates its key every 30 days; a key active for much longer
# means that the rotation job is not running (the other planes have no
# rotation policy yet, so the same bound flags keys that were never rotated).
MAX_KEY_AGE = timedelta(days=45)


async def check_database(dsn: str) -> list[Finding]:
    """Connect as the admin role; compare clocks and report active key ages per org."""
    try:
        conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return [
            Finding(
                "database",
                "fail",
                f"cannot connect as the admin role: {type(error).__name__}: {error}",
                RUNBOOK_DATABASE_OUTAGE,
            )
        ]
    try:
        sent = time.time()
        database_now: datetime = await conn.fetchval(DOCTOR_NOW)
        skew = database_now.timestamp() - (sent + time.time()) / 2
        findings = [Finding("database", "ok", "reachable as the admin role")]
        if abs(skew) > MAX_CLOCK_SKEW_SECONDS:
            findings.append(
                Finding(
                    "database: clock",
                    "warn",
                    f"PostgreSQL's now() differs from this host's clock by {skew:+.0f}s "
                    f"(limit {MAX_CLOCK_SKEW_SECONDS:.0f}s); check NTP on both hosts",
                )
            )
        else:
            findings.append(Finding("database: clock", "ok", f"offset {skew:+.1f}s from now()"))
        findings.extend(await _key_findings(conn, database_now))
        return findings
    except (OSError, asyncpg.PostgresError) as error:
        return [Finding("database", "fail", f"query failed: {error}", RUNBOOK_DATABASE_OUTAGE)]
    finally:
        await conn.close()


async def _key_findings(conn: asyncpg.Connection, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    for org in await conn.fetch(ORG_LIST):
        async with conn.transaction(readonly=True):
            await set_org(conn, org["id"])
            keys = await conn.fetch(DOCTOR_ACTIVE_KEYS, org["id"])
        for key in keys:
            since = key["activated_at"] or key["created_at"]
            age = now - since
            check = f"keys: {org['name']}/{key['plane']}"
            if age > MAX_KEY_AGE:
                findings.append(
                    Finding(
                        check,
                        "warn",
                        f"active key {key['kid']} is {age.days} days old "
                        f"(limit {MAX_KEY_AGE.days}); rotate it",
                        RUNBOOK_KEYS,
                    )
                )
            else:
                findings.append(
                    Finding(check, "ok", f"active key {key['kid']}, {age.days} days old")
                )
    return findings


def run_database_checks(dsn: str) -> list[Finding]:
    return asyncio.run(asyncio.wait_for(check_database(dsn), CONNECT_TIMEOUT_SECONDS * 3))
