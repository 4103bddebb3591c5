"""Queries on users, groups, TOTP seals and sessions."""

from appliance.db.queries import query

USER_FOR_UPDATE = query(
    "user_for_update",
    """
    SELECT u.id, u.username, u.display_name, u.password_hash, u.disabled, u.failed_attempts,
           u.locked_until, u.last_totp_step, s.sealed AS totp_sealed
    FROM users u LEFT JOIN user_totp_seals s ON s.user_id = u.id AND s.plane = $3
    WHERE u.org_id = $1 AND u.username = $2
    FOR UPDATE OF u
    """,
)
USER_RECORD_FAILURE = query(
    "user_record_failure",
    "UPDATE users SET failed_attempts = $2, locked_until = $3, updated_at = $4 WHERE id = $1",
)
USER_RECORD_SUCCESS = query(
    "user_record_success",
    """
    UPDATE users SET failed_attempts = 0, locked_until = NULL, last_totp_step = $2, updated_at = $3
    WHERE id = $1
    """,
)
USER_INSERT = query(
    "user_insert",
    """
    INSERT INTO users (org_id, username, display_name, email, password_hash)
    VALUES ($1, $2, $3, $4, $5) RETURNING id
    """,
)
USER_TOTP_SEAL_UPSERT = query(
    "user_totp_seal_upsert",
    """
    INSERT INTO user_totp_seals (org_id, user_id, plane, sealed) VALUES ($1, $2, $3, $4)
    ON CONFLICT (user_id, plane) DO UPDATE SET sealed = EXCLUDED.sealed
    """,
)
USER_GROUPS = query(
    "user_groups",
    """
    SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id
    WHERE m.org_id = $1 AND m.user_id = $2 ORDER BY g.name
    """,
)
GROUP_INSERT = query(
    "group_insert",
    """
    INSERT INTO groups (org_id, name) VALUES ($1, $2)
    ON CONFLICT (org_id, name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id
    """,
)
GROUP_MEMBER_ADD = query(
    "group_member_add",
    """
    INSERT INTO group_members (org_id, group_id, user_id) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    """,
)
SESSION_INSERT = query(
    "session_insert",
    """
    INSERT INTO sessions (org_id, user_id, plane, token_hash, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
    """,
)
SESSION_BY_TOKEN = query(
    "session_by_token",
    """
    SELECT s.id, s.user_id, s.expires_at, u.username, u.display_name, u.disabled
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.plane = $2 AND s.org_id = $3
      AND s.revoked_at IS NULL AND s.expires_at > $4
    """,
)
SESSION_REVOKE = query(
    "session_revoke",
    "UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
)
