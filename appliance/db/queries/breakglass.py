"""Queries on break-glass accounts."""

from appliance.db.queries import query

ACCOUNT_FOR_UPDATE = query(
    "breakglass_account_for_update",
    """
    SELECT id, name, role, passphrase_hash, totp_secret_sealed, default_ttl_seconds,
           max_ttl_seconds, disabled, failed_attempts, locked_until, last_totp_step,
           custodians_required
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
ACCOUNTS_FOR_SNAPSHOT = query(
    "breakglass_accounts_for_snapshot",
    """
    SELECT id, name, role, passphrase_hash, totp_secret_sealed, default_ttl_seconds,
           max_ttl_seconds, disabled, failed_attempts, locked_until, last_totp_step,
           custodians_required
    FROM breakglass_accounts WHERE org_id = $1 ORDER BY name
    """,
)
CUSTODIANS_OF_ORG = query(
    "breakglass_custodians_of_org",
    """
    SELECT account_id, position, name, totp_secret_sealed, last_totp_step
    FROM breakglass_custodians WHERE org_id = $1 ORDER BY account_id, position
    """,
)
CUSTODIANS_FOR_UPDATE = query(
    "breakglass_custodians_for_update",
    """
    SELECT position, name, totp_secret_sealed, last_totp_step
    FROM breakglass_custodians WHERE account_id = $1 ORDER BY position FOR UPDATE
    """,
)
CUSTODIAN_RECORD_STEP = query(
    "breakglass_custodian_record_step",
    """
    UPDATE breakglass_custodians SET last_totp_step = GREATEST(last_totp_step, $3)
    WHERE account_id = $1 AND position = $2
    """,
)
ACCOUNT_REPLAY_EFFECTS = query(
    "breakglass_account_replay_effects",
    """
    UPDATE breakglass_accounts
    SET last_totp_step = GREATEST(last_totp_step, $2),
        failed_attempts = CASE WHEN $3::integer IS NULL THEN failed_attempts ELSE $3 END,
        locked_until = CASE WHEN $4::timestamptz IS NULL THEN locked_until
                            ELSE GREATEST(COALESCE(locked_until, $4), $4) END,
        last_activated_at = GREATEST(last_activated_at, $5),
        updated_at = now()
    WHERE id = $1
    """,
)
SNAPSHOT_VERSION = query(
    "breakglass_snapshot_version", "SELECT version FROM breakglass_snapshot_version"
)
ACCOUNT_EXISTS = query(
    "breakglass_account_exists",
    "SELECT EXISTS (SELECT 1 FROM breakglass_accounts WHERE org_id = $1)",
)
