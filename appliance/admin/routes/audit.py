"""Audit trail: search, verify the hash chain, export as JSON lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
from quart import Response, request
from quart.typing import ResponseReturnValue

from appliance.admin.fields import query_int, query_string, query_time
from appliance.admin.rbac import Permission
from appliance.admin.routes import ORG_PREFIX, api, reply
from appliance.admin.service import admin_call, service
from appliance.audit.export import AuditFilter, export_lines, search_events
from appliance.audit.verify import ChainBroken, verify_chain
from appliance.db.tenancy import set_org
from appliance.errors import InvalidRequest

AUDIT = f"{ORG_PREFIX}/audit"
MAX_SEARCH = 500


def audit_filter() -> AuditFilter:
    args = request.args
    selection = AuditFilter(
        since=query_time(args, "since"),
        until=query_time(args, "until"),
        actor=query_string(args, "actor"),
        event_type=query_string(args, "event_type", max_chars=100),
        subject=query_string(args, "subject"),
    )
    if selection.since and selection.until and selection.since >= selection.until:
        raise InvalidRequest("query parameter since must be earlier than until")
    return selection


@asynccontextmanager
async def snapshot(pool: asyncpg.Pool, org_id: UUID) -> AsyncIterator[asyncpg.Connection]:
    """Open a read-only, repeatable-read transaction: one consistent view of the chain."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await set_org(conn, org_id)
        yield conn


@api.get(f"{AUDIT}/events")
async def search(org: str) -> ResponseReturnValue:
    selection = audit_filter()
    after_seq = query_int(request.args, "after_seq", default=0, low=0, high=2**62)
    limit = query_int(request.args, "limit", default=100, low=1, high=MAX_SEARCH)
    async with admin_call(org, Permission.AUDIT_READ) as call:
        events = await search_events(
            call.conn, call.org_id, selection, after_seq=after_seq, limit=limit
        )
    next_after = events[-1]["seq"] if len(events) == limit else None
    return reply({"events": events, "next_after_seq": next_after})


@api.get(f"{AUDIT}/verify")
async def verify(org: str) -> ResponseReturnValue:
    async with admin_call(org, Permission.AUDIT_READ) as call:
        org_id = call.org_id
    async with snapshot(service().pool, org_id) as conn:
        try:
            report = await verify_chain(conn, org_id)
        except ChainBroken as error:
            return reply(
                {
                    "verified": False,
                    "broken_at_seq": error.seq,
                    "reason": error.reason,
                    "events": None,
                    "head_hash": None,
                }
            )
    return reply(
        {
            "verified": True,
            "events": report.events,
            "head_hash": report.head_hash.hex(),
            "broken_at_seq": None,
            "reason": None,
        }
    )


@api.get(f"{AUDIT}/export")
async def export(org: str) -> ResponseReturnValue:
    """Stream matching events as JSON lines (`application/x-ndjson`), in chain order."""
    selection = audit_filter()
    async with admin_call(org, Permission.AUDIT_READ) as call:
        org_id = call.org_id
    # The body is streamed after this handler returns, outside the app context.
    pool = service().pool
    lines = export_lines(org_id, selection, open_page=lambda: snapshot(pool, org_id))
    response = Response(lines, status=200, content_type="application/x-ndjson")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{org}.jsonl"'
    return response
