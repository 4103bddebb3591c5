"""Queries of the notification outbox and its webhook deliveries."""

from appliance.db.queries import query

NOTIFY_WEBHOOK_INSERT = query(
    "notify_webhook_insert",
    """
    INSERT INTO notify_webhooks (org_id, url, secret_sealed, payload_format, events)
    VALUES ($1, $2, $3, $4, $5) RETURNING id
    """,
)
NOTIFY_OUTBOX_INSERT = query(
    "notify_outbox_insert",
    """
    INSERT INTO notify_outbox (org_id, event_type, subject, payload, created_at)
    VALUES ($1, $2, $3, $4, $5) RETURNING id
    """,
)
# Fan-out in the transaction of the event: one delivery per enabled webhook
# that subscribes to the event type.
NOTIFY_DELIVERIES_CREATE = query(
    "notify_deliveries_create",
    """
    INSERT INTO notify_deliveries (org_id, event_id, webhook_id, next_attempt_at)
    SELECT $1, $2, w.id, $4 FROM notify_webhooks w
    WHERE w.org_id = $1 AND w.enabled AND $3 = ANY (w.events)
    ON CONFLICT DO NOTHING
    """,
)
NOTIFY_DELIVERIES_DUE = query(
    "notify_deliveries_due",
    """
    SELECT d.id, d.attempts, o.id AS event_id, o.event_type, o.subject, o.payload,
           o.created_at, w.id AS webhook_id, w.url, w.secret_sealed, w.payload_format
    FROM notify_deliveries d
    JOIN notify_outbox o ON o.id = d.event_id
    JOIN notify_webhooks w ON w.id = d.webhook_id
    WHERE d.org_id = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
    ORDER BY d.next_attempt_at
    LIMIT $3
    FOR UPDATE OF d SKIP LOCKED
    """,
)
NOTIFY_DELIVERY_RECORD = query(
    "notify_delivery_record",
    """
    UPDATE notify_deliveries
    SET status = $2::text, attempts = $3, next_attempt_at = $4, last_attempt_at = $5::timestamptz,
        last_http_status = $6, last_error = $7,
        delivered_at = CASE WHEN $2::text = 'delivered' THEN $5::timestamptz END
    WHERE id = $1
    """,
)
NOTIFY_DELIVERIES_FOR_EVENT_TYPE = query(
    "notify_deliveries_for_event_type",
    """
    SELECT d.id, d.status, d.attempts, d.last_http_status, d.last_error, o.event_type
    FROM notify_deliveries d JOIN notify_outbox o ON o.id = d.event_id
    WHERE d.org_id = $1 AND o.event_type = $2
    ORDER BY o.created_at
    """,
)
