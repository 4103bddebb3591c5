-- Auth plane: OAuth clients, authorization codes, grants, refresh tokens,
-- revoked access tokens and client-assertion ids.
--
-- Secrets and tokens are stored only as hashes: a client secret as
-- HMAC-SHA256 under a per-client salt, codes and refresh tokens as SHA-256
-- (they carry 256 random bits, so a plain hash cannot be brute-forced).
-- Every table is org-scoped and under row-level security, so a token of one
-- org never resolves in another.

CREATE TABLE oauth_clients (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    client_id text NOT NULL CHECK (client_id ~ '^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$'),
    client_name text NOT NULL DEFAULT '',
    client_type text NOT NULL CHECK (client_type IN ('confidential', 'public')),
    token_endpoint_auth_method text NOT NULL
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')),
    secret_salt bytea,
    secret_hash bytea,
    jwks jsonb,
    redirect_uris text[] NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
    grant_types text[] NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    resources text[] NOT NULL DEFAULT '{}',
    access_token_ttl_seconds integer NOT NULL DEFAULT 600 CHECK (access_token_ttl_seconds BETWEEN 60 AND 3600),
    refresh_token_ttl_seconds integer NOT NULL DEFAULT 86400
        CHECK (refresh_token_ttl_seconds BETWEEN 300 AND 2592000),
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, client_id),
    -- A public client has no secret and no keys; a confidential one has exactly one kind.
    CHECK ((client_type = 'public') = (token_endpoint_auth_method = 'none')),
    CHECK ((token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post'))
           = (secret_hash IS NOT NULL AND secret_salt IS NOT NULL)),
    CHECK ((token_endpoint_auth_method = 'private_key_jwt') = (jwks IS NOT NULL))
);
ALTER TABLE oauth_clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_clients FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth_clients_org ON oauth_clients USING (org_id = appliance_current_org());
GRANT SELECT ON oauth_clients TO appliance_auth;
GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_clients TO appliance_admin;

-- One authorization: what a user (or nobody, for client credentials) granted
-- a client. Refresh tokens and access tokens point at it; revoking it revokes
-- the whole token family.
CREATE TABLE oauth_grants (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    user_id uuid NOT NULL,
    scope text NOT NULL,
    resources text[] NOT NULL DEFAULT '{}',
    auth_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text,
    FOREIGN KEY (org_id, client_id) REFERENCES oauth_clients (org_id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);

CREATE TABLE oauth_authorization_codes (
    code_hash bytea PRIMARY KEY,
    org_id uuid NOT NULL,
    grant_id uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    redirect_uri text NOT NULL,
    code_challenge text NOT NULL,
    nonce text,
    session_id uuid,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX oauth_authorization_codes_expiry ON oauth_authorization_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    token_hash bytea PRIMARY KEY,
    org_id uuid NOT NULL,
    grant_id uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- Set when this token was exchanged for its successor; presenting it
    -- again is reuse and revokes the grant.
    rotated_at timestamptz
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
CREATE INDEX oauth_refresh_tokens_expiry ON oauth_refresh_tokens (expires_at);

-- Access tokens are self-contained JWTs; one revoked before it expires is
-- listed here (by `jti`) until it would have expired anyway.
CREATE TABLE oauth_revoked_access_tokens (
    org_id uuid NOT NULL,
    jti uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, jti)
);

-- `jti` values of private_key_jwt client assertions seen until they expire,
-- so an intercepted assertion cannot be replayed.
CREATE TABLE oauth_client_assertion_jtis (
    org_id uuid NOT NULL,
    client_id text NOT NULL,
    jti text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, client_id, jti)
);
CREATE INDEX oauth_client_assertion_jtis_expiry ON oauth_client_assertion_jtis (expires_at);

ALTER TABLE oauth_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_grants FORCE ROW LEVEL SECURITY;
ALTER TABLE oauth_authorization_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_authorization_codes FORCE ROW LEVEL SECURITY;
ALTER TABLE oauth_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_refresh_tokens FORCE ROW LEVEL SECURITY;
ALTER TABLE oauth_revoked_access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_revoked_access_tokens FORCE ROW LEVEL SECURITY;
ALTER TABLE oauth_client_assertion_jtis ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_client_assertion_jtis FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth_grants_org ON oauth_grants USING (org_id = appliance_current_org());
CREATE POLICY oauth_authorization_codes_org ON oauth_authorization_codes USING (org_id = appliance_current_org());
CREATE POLICY oauth_refresh_tokens_org ON oauth_refresh_tokens USING (org_id = appliance_current_org());
CREATE POLICY oauth_revoked_access_tokens_org ON oauth_revoked_access_tokens
    USING (org_id = appliance_current_org());
CREATE POLICY oauth_client_assertion_jtis_org ON oauth_client_assertion_jtis
    USING (org_id = appliance_current_org());

GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_grants, oauth_authorization_codes, oauth_refresh_tokens,
    oauth_revoked_access_tokens, oauth_client_assertion_jtis TO appliance_auth;
-- The admin plane lists and revokes grants but never sees token hashes.
GRANT SELECT, UPDATE (revoked_at, revoked_reason) ON oauth_grants TO appliance_admin;
