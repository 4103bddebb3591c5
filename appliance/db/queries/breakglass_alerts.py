"""Queries on break-glass alert targets and alerts."""

from appliance.db.queries import query

ALERT_TARGETS_OF_ORG = query(
    "breakglass_alert_targets_of_org",
    """
    SELECT id, url, secret_sealed, payload_format FROM breakglass_alert_targets
    WHERE org_id = $1 AND enabled ORDER BY created_at
    """,
)
ALERT_TARGET_INSERT = query(
    "breakglass_alert_target_insert",
    """
    INSERT INTO breakglass_alert_targets (org_id, url, secret_sealed, payload_format)
    VALUES ($1, $2, $3, $4) RETURNING id
    """,
)
ALERTS_ENQUEUE = query(
    "breakglass_alerts_enqueue",
    """
    INSERT INTO breakglass_alerts (org_id, event_id, target_id, event_type, subject, payload,
                                   created_at, next_attempt_at)
    SELECT $1, $2, t.id, $3, $4, $5, $6, $6
    FROM breakglass_alert_targets t WHERE t.org_id = $1 AND t.enabled
    ON CONFLICT (event_id, target_id) DO NOTHING
    """,
)
ALERT_RECORD_REPLAYED = query(
    "breakglass_alert_record_replayed",
    """
    INSERT INTO breakglass_alerts (org_id, event_id, target_id, event_type, subject, payload,
                                   created_at, next_attempt_at, status, attempts, delivered_at)
    SELECT $1, $2, t.id, $3, $4, $5, $6, $7::timestamptz, $8::text, $9,
           CASE WHEN $8::text = 'delivered' THEN $7::timestamptz END
    FROM breakglass_alert_targets t WHERE t.org_id = $1 AND t.id = $10
    ON CONFLICT (event_id, target_id) DO NOTHING
    """,
)
ALERTS_DUE = query(
    "breakglass_alerts_due",
    """
    SELECT a.id, a.event_id, a.target_id, a.event_type, a.subject, a.payload, a.created_at,
           a.attempts, t.url, t.secret_sealed, t.payload_format
    FROM breakglass_alerts a JOIN breakglass_alert_targets t ON t.id = a.target_id
    WHERE a.org_id = $1 AND a.status = 'pending' AND a.next_attempt_at <= $2
    ORDER BY a.next_attempt_at LIMIT $3
    FOR UPDATE OF a SKIP LOCKED
    """,
)
ALERT_RECORD_ATTEMPT = query(
    "breakglass_alert_record_attempt",
    """
    UPDATE breakglass_alerts
    SET status = $2, attempts = $3, next_attempt_at = $4, last_attempt_at = $5,
        last_http_status = $6, last_error = $7,
        delivered_at = CASE WHEN $2::text = 'delivered' THEN $5::timestamptz ELSE delivered_at END
    WHERE id = $1
    """,
)
