"""Queries of the admin plane on break-glass alert targets and their alerts.

The admin plane writes a target's sealed HMAC secret but never selects it:
only the break-glass plane, which has the private key, reads it.
"""

from appliance.db.queries import query

ADMIN_ALERT_TARGETS_LIST = query(
    "admin_alert_targets_list",
    """
    SELECT id, url, payload_format, enabled, created_at FROM breakglass_alert_targets
    WHERE org_id = $1 ORDER BY created_at, id LIMIT $2
    """,
)
ADMIN_ALERT_TARGET_INSERT = query(
    "admin_alert_target_insert",
    """
    INSERT INTO breakglass_alert_targets (org_id, url, secret_sealed, payload_format, created_at)
    VALUES ($1, $2, $3, $4, $5)
    RETURNING id, url, payload_format, enabled, created_at
    """,
)
ADMIN_ALERT_TARGET_LOCK = query(
    "admin_alert_target_lock",
    """
    SELECT id, url, payload_format, enabled, created_at FROM breakglass_alert_targets
    WHERE org_id = $1 AND id = $2 FOR UPDATE
    """,
)
ADMIN_ALERT_TARGET_GET = query(
    "admin_alert_target_get",
    """
    SELECT id, url, payload_format, enabled, created_at FROM breakglass_alert_targets
    WHERE org_id = $1 AND id = $2
    """,
)
ADMIN_ALERT_TARGET_UPDATE = query(
    "admin_alert_target_update",
    """
    UPDATE breakglass_alert_targets SET url = $3, payload_format = $4, enabled = $5
    WHERE org_id = $1 AND id = $2
    RETURNING id, url, payload_format, enabled, created_at
    """,
)
ADMIN_ALERT_TARGET_DELETE = query(
    "admin_alert_target_delete",
    "DELETE FROM breakglass_alert_targets WHERE org_id = $1 AND id = $2",
)
ADMIN_ALERTS_OF_TARGET = query(
    "admin_alerts_of_target",
    """
    SELECT event_type, subject, status, attempts, last_http_status, created_at, delivered_at
    FROM breakglass_alerts WHERE org_id = $1 AND target_id = $2
    ORDER BY created_at DESC, id LIMIT $3
    """,
)
