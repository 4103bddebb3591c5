"""Queries of `appliance doctor`, run as the admin role."""

from appliance.db.queries import query

DOCTOR_NOW = query("doctor_now", "SELECT now()")
DOCTOR_ACTIVE_KEYS = query(
    "doctor_active_keys",
    """
    SELECT plane, kid, activated_at, created_at FROM signing_keys
    WHERE org_id = $1 AND status = 'active' ORDER BY plane
    """,
)
