"""Queries of the on-call commands: break-glass alerts and their targets, read by the admin role."""

from appliance.db.queries import query

INCIDENT_ALERT_TARGET_COUNT = query(
    "incident_alert_target_count",
    "SELECT count(*) FROM breakglass_alert_targets WHERE org_id = $1 AND enabled",
)
INCIDENT_ALERTS = query(
    "incident_alerts",
    """
    SELECT event_type, subject, payload, created_at, status, attempts, last_http_status,
           last_error, delivered_at
    FROM breakglass_alerts
    WHERE org_id = $1 AND ($2::text IS NULL OR payload ->> 'incident' = $2)
    ORDER BY created_at
    """,
)
