"""Verification of an org's audit chain: every link, and the head."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from appliance.audit.chain import GENESIS_HASH, AuditEvent, chain_hash
from appliance.db.queries.audit import AUDIT_EVENTS_PAGE, AUDIT_HEAD_GET

PAGE_SIZE = 1000


class ChainBroken(Exception):
    """The chain does not verify; the message names the first bad sequence number."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit chain broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True)
class ChainReport:
    events: int
    head_hash: bytes


async def verify_chain(conn: asyncpg.Connection, org_id: UUID) -> ChainReport:
    """Recompute every hash of the org's chain; raise `ChainBroken` at the first mismatch."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    last_seq = 0
    while True:
        rows = await conn.fetch(AUDIT_EVENTS_PAGE, org_id, last_seq, PAGE_SIZE)
        if not rows:
            break
        for row in rows:
            seq = row["seq"]
            if seq != expected_seq:
                raise ChainBroken(expected_seq, f"missing event (next present is seq {seq})")
            if bytes(row["prev_hash"]) != expected_prev:
                raise ChainBroken(seq, "prev_hash does not match the previous event's hash")
            event = AuditEvent(
                event_type=row["event_type"],
                plane=row["plane"],
                actor=row["actor"],
                subject=row["subject"],
                outcome=row["outcome"],
                occurred_at=row["occurred_at"],
                failure_reason=row["failure_reason"],
                source=row["source"],
                data=json.loads(row["data"]),
                event_id=row["event_id"],
            )
            digest = chain_hash(expected_prev, org_id, seq, event)
            if digest != bytes(row["hash"]):
                raise ChainBroken(seq, "content does not match its hash (event altered)")
            expected_prev = digest
            expected_seq = seq + 1
            last_seq = seq
    head = await conn.fetchrow(AUDIT_HEAD_GET, org_id)
    head_seq = head["seq"] if head else 0
    head_hash = bytes(head["hash"]) if head else GENESIS_HASH
    if head_seq != last_seq or head_hash != expected_prev:
        raise ChainBroken(
            last_seq + 1, f"head says seq {head_seq} but the chain ends at seq {last_seq}"
        )
    return ChainReport(events=last_seq, head_hash=expected_prev)
