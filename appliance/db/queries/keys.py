"""Queries on signing keys and sealing keys."""

from appliance.db.queries import query

SIGNING_KEY_ACTIVE = query(
    "signing_key_active",
    """
    SELECT kid, alg, public_jwk, private_key_nonce, private_key_ciphertext, activated_at
    FROM signing_keys
    WHERE org_id = $1 AND plane = $2 AND status = 'active'
    """,
)
SIGNING_KEY_INSERT = query(
    "signing_key_insert",
    """
    INSERT INTO signing_keys (org_id, plane, kid, alg, public_jwk, private_key_nonce,
                              private_key_ciphertext, status, activated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8 = 'active' THEN $9::timestamptz END)
    """,
)
SIGNING_KEYS_PUBLISHED = query(
    "signing_keys_published",
    """
    SELECT kid, public_jwk, status FROM signing_keys
    WHERE org_id = $1 AND plane = $2
      AND (status IN ('next', 'active')
           OR (status = 'retired' AND (publish_until IS NULL OR publish_until > $3)))
    ORDER BY created_at
    """,
)
SIGNING_KEY_LOCK_PLANE = query(
    "signing_key_lock_plane",
    "SELECT pg_advisory_xact_lock(hashtextextended('signing-keys:' || $1::text || ':' || $2, 0))",
)
SEAL_KEY_UPSERT = query(
    "seal_key_upsert",
    """
    INSERT INTO plane_seal_keys (plane, public_key) VALUES ($1, $2)
    ON CONFLICT (plane) DO UPDATE SET public_key = EXCLUDED.public_key, updated_at = now()
    WHERE plane_seal_keys.public_key IS DISTINCT FROM EXCLUDED.public_key
    """,
)
SEAL_KEY_GET = query("seal_key_get", "SELECT public_key FROM plane_seal_keys WHERE plane = $1")
