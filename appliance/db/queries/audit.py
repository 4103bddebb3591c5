"""Queries on the audit hash chain."""

from appliance.db.queries import query

AUDIT_HEAD_ENSURE = query(
    "audit_head_ensure",
    """
    INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, $2)
    ON CONFLICT (org_id) DO NOTHING
    """,
)
AUDIT_HEAD_LOCK = query(
    "audit_head_lock", "SELECT seq, hash FROM audit_heads WHERE org_id = $1 FOR UPDATE"
)
AUDIT_HEAD_ADVANCE = query(
    "audit_head_advance", "UPDATE audit_heads SET seq = $2, hash = $3 WHERE org_id = $1"
)
AUDIT_EVENT_INSERT = query(
    "audit_event_insert",
    """
    INSERT INTO audit_events (org_id, seq, event_id, occurred_at, plane, event_type, actor,
                              subject, outcome, failure_reason, source, data, prev_hash, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    """,
)
AUDIT_EVENTS_PAGE = query(
    "audit_events_page",
    """
    SELECT seq, event_id, occurred_at, plane, event_type, actor, subject, outcome,
           failure_reason, source, data, prev_hash, hash
    FROM audit_events WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
    """,
)
AUDIT_HEAD_GET = query("audit_head_get", "SELECT seq, hash FROM audit_heads WHERE org_id = $1")
AUDIT_EVENTS_BY_TYPE = query(
    "audit_events_by_type",
    """
    SELECT seq, event_id, occurred_at, event_type, actor, subject, outcome, failure_reason, data
    FROM audit_events WHERE org_id = $1 AND event_type = $2 ORDER BY seq
    """,
)
AUDIT_EVENT_EXISTS = query(
    "audit_event_exists", "SELECT 1 FROM audit_events WHERE org_id = $1 AND event_id = $2"
)
