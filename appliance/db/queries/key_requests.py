"""Queries on key rotation requests, performed by the owning plane."""

from appliance.db.queries import query

ROTATION_REQUESTS_PENDING = query(
    "rotation_requests_pending",
    """
    SELECT id, requested_by, reason FROM key_rotation_requests
    WHERE org_id = $1 AND plane = $2 AND status = 'pending'
    ORDER BY requested_at
    FOR UPDATE SKIP LOCKED
    """,
)
ROTATION_REQUEST_COMPLETE = query(
    "rotation_request_complete",
    """
    UPDATE key_rotation_requests SET status = 'completed', completed_at = $2, new_kid = $3
    WHERE id = $1
    """,
)
