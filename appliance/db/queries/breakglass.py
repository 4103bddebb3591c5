"""Queries on break-glass accounts."""

from appliance.db.queries import query

ACCOUNT_FOR_UPDATE = query(
    "breakglass_account_for_update",
    """
    SELECT id, name, role, passphrase_hash, totp_secret_sealed, default_ttl_seconds,
           max_ttl_seconds, disabled, failed_attempts, locked_until, last_totp_step
    FROM breakglass_accounts WHERE org_id = $1 AND name = $2 FOR UPDATE
    """,
)
ACCOUNT_RECORD_FAILURE = query(
    "breakglass_account_record_failure",
    """
    UPDATE breakglass_accounts
    SET failed_attempts = $2, locked_until = $3, updated_at = $4
    WHERE id = $1
    """,
)
ACCOUNT_RECORD_SUCCESS = query(
    "breakglass_account_record_success",
    """
    UPDATE breakglass_accounts
    SET failed_attempts = 0, locked_until = NULL, last_totp_step = $2,
        last_activated_at = $3, updated_at = $3
    WHERE id = $1
    """,
)
ACCOUNT_INSERT = query(
    "breakglass_account_insert",
    """
    INSERT INTO breakglass_accounts (org_id, name, role, passphrase_hash, totp_secret_sealed,
                                     default_ttl_seconds, max_ttl_seconds)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING id
    """,
)
