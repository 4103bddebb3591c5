"""Queries of the auth plane: clients, grants, codes, refresh tokens, key rotation."""

from appliance.db.queries import query

CLIENT_BY_ID = query(
    "oidc_client_by_id",
    """
    SELECT client_id, client_name, client_type, token_endpoint_auth_method, secret_salt,
           secret_hash, jwks, redirect_uris, post_logout_redirect_uris, grant_types, scopes,
           resources,
           access_token_ttl_seconds, refresh_token_ttl_seconds, disabled
    FROM oauth_clients WHERE org_id = $1 AND client_id = $2
    """,
)
CLIENT_INSERT = query(
    "oidc_client_insert",
    """
    INSERT INTO oauth_clients (org_id, client_id, client_name, client_type,
                               token_endpoint_auth_method, secret_salt, secret_hash, jwks,
                               redirect_uris, post_logout_redirect_uris, grant_types, scopes,
                               resources, access_token_ttl_seconds,
                               refresh_token_ttl_seconds)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    """,
)

GRANT_INSERT = query(
    "oidc_grant_insert",
    """
    INSERT INTO oauth_grants (id, org_id, client_id, user_id, scope, resources, auth_time,
                              created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    """,
)
GRANT_REVOKE = query(
    "oidc_grant_revoke",
    """
    UPDATE oauth_grants SET revoked_at = $3, revoked_reason = $4
    WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL
    RETURNING client_id, user_id
    """,
)

CODE_INSERT = query(
    "oidc_code_insert",
    """
    INSERT INTO oauth_authorization_codes (code_hash, org_id, grant_id, client_id,
                                           redirect_uri, code_challenge, nonce, session_id,
                                           created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    """,
)
# The row lock serialises requests racing for one code: the second one waits
# for the first to commit and then reads `consumed_at` as set.
CODE_FOR_UPDATE = query(
    "oidc_code_for_update",
    """
    SELECT c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.nonce, c.session_id,
           c.expires_at, c.consumed_at,
           g.user_id, g.scope, g.resources, g.auth_time, g.expires_at AS grant_expires_at,
           g.revoked_at AS grant_revoked_at
    FROM oauth_authorization_codes c JOIN oauth_grants g ON g.id = c.grant_id
    WHERE c.org_id = $1 AND c.code_hash = $2
    FOR UPDATE OF c
    """,
)
CODE_CONSUME = query(
    "oidc_code_consume",
    "UPDATE oauth_authorization_codes SET consumed_at = $3 WHERE org_id = $1 AND code_hash = $2",
)

REFRESH_INSERT = query(
    "oidc_refresh_insert",
    """
    INSERT INTO oauth_refresh_tokens (token_hash, org_id, grant_id, client_id, created_at,
                                      expires_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    """,
)
REFRESH_FOR_UPDATE = query(
    "oidc_refresh_for_update",
    """
    SELECT r.grant_id, r.client_id, r.expires_at, r.rotated_at,
           g.user_id, g.scope, g.resources, g.auth_time, g.expires_at AS grant_expires_at,
           g.revoked_at AS grant_revoked_at
    FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
    WHERE r.org_id = $1 AND r.token_hash = $2
    FOR UPDATE OF r
    """,
)
REFRESH_BY_HASH = query(
    "oidc_refresh_by_hash",
    """
    SELECT r.grant_id, r.client_id, r.created_at, r.expires_at, r.rotated_at,
           g.user_id, g.scope, g.revoked_at AS grant_revoked_at, u.username
    FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
    JOIN users u ON u.id = g.user_id
    WHERE r.org_id = $1 AND r.token_hash = $2
    """,
)
REFRESH_ROTATE = query(
    "oidc_refresh_rotate",
    "UPDATE oauth_refresh_tokens SET rotated_at = $3 WHERE org_id = $1 AND token_hash = $2",
)

ACCESS_TOKEN_REVOKE = query(
    "oidc_access_token_revoke",
    """
    INSERT INTO oauth_revoked_access_tokens (org_id, jti, expires_at) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    """,
)
# Whether an access token was revoked by itself (RFC 7009) or with its grant.
ACCESS_TOKEN_REVOCATION = query(
    "oidc_access_token_revocation",
    """
    SELECT EXISTS (SELECT 1 FROM oauth_revoked_access_tokens
                   WHERE org_id = $1 AND jti = $2) AS token_revoked,
           EXISTS (SELECT 1 FROM oauth_grants
                   WHERE org_id = $1 AND id = $3::uuid AND revoked_at IS NOT NULL) AS grant_revoked
    """,
)

# Inserts nothing (and returns no row) when the assertion's jti was seen before.
ASSERTION_JTI_RECORD = query(
    "oidc_assertion_jti_record",
    """
    INSERT INTO oauth_client_assertion_jtis (org_id, client_id, jti, expires_at)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT DO NOTHING RETURNING jti
    """,
)

AUTH_SESSION_BY_TOKEN = query(
    "oidc_session_by_token",
    """
    SELECT s.id, s.user_id, s.created_at, s.expires_at, u.username
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.plane = 'auth' AND s.org_id = $2
      AND s.revoked_at IS NULL AND s.expires_at > $3 AND NOT u.disabled
    """,
)
AUTH_SESSION_REVOKE = query(
    "oidc_session_revoke",
    "UPDATE sessions SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
)
USER_CLAIMS = query(
    "oidc_user_claims",
    """
    SELECT id, username, display_name, email, disabled,
           ARRAY(SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id
                 WHERE m.org_id = $1 AND m.user_id = $2 ORDER BY g.name) AS groups
    FROM users WHERE org_id = $1 AND id = $2
    """,
)

# Key rotation: one job run per plane at a time across replicas.
ROTATION_TRY_LOCK = query(
    "oidc_rotation_try_lock",
    "SELECT pg_try_advisory_xact_lock(hashtextextended('key-rotation:' || $1::text, 0))",
)
SIGNING_KEYS_CURRENT = query(
    "oidc_signing_keys_current",
    """
    SELECT kid, status, created_at, activated_at FROM signing_keys
    WHERE org_id = $1 AND plane = $2 AND status IN ('next', 'active')
    ORDER BY created_at
    FOR UPDATE
    """,
)
SIGNING_KEY_RETIRE = query(
    "oidc_signing_key_retire",
    """
    UPDATE signing_keys SET status = 'retired', retired_at = $4, publish_until = $5
    WHERE org_id = $1 AND plane = $2 AND kid = $3 AND status = 'active'
    """,
)
SIGNING_KEY_PROMOTE = query(
    "oidc_signing_key_promote",
    """
    UPDATE signing_keys SET status = 'active', activated_at = $4
    WHERE org_id = $1 AND plane = $2 AND kid = $3 AND status = 'next'
    """,
)

PURGE_CODES = query(
    "oidc_purge_codes",
    "DELETE FROM oauth_authorization_codes WHERE org_id = $1 AND expires_at < $2",
)
PURGE_GRANTS = query(
    "oidc_purge_grants", "DELETE FROM oauth_grants WHERE org_id = $1 AND expires_at < $2"
)
PURGE_REVOKED_ACCESS_TOKENS = query(
    "oidc_purge_revoked_access_tokens",
    "DELETE FROM oauth_revoked_access_tokens WHERE org_id = $1 AND expires_at < $2",
)
PURGE_ASSERTION_JTIS = query(
    "oidc_purge_assertion_jtis",
    "DELETE FROM oauth_client_assertion_jtis WHERE org_id = $1 AND expires_at < $2",
)
