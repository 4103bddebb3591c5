-- Foundation: orgs, plane roles, signing keys, audit chain, break-glass accounts.
--
-- Every org-scoped table has row-level security keyed on the transaction
-- setting `appliance.org_id` (see appliance/db/tenancy.py). The plane roles own
-- nothing, so the policies always apply to them; FORCE makes them apply to the
-- owner too, except where the owner is a superuser (tests and `appliance up`
-- bootstrap), which bypasses RLS by design.

-- Plane roles. Roles are cluster-wide, so creation is idempotent across
-- databases. The CONNECTION LIMIT caps each plane below the server's
-- max_connections, so one plane that leaks connections cannot starve another.
DO $roles$
DECLARE
    plane_limits CONSTANT jsonb := '{"auth": 60, "admin": 15, "pim": 20, "breakglass": 15}';
    plane text;
BEGIN
    FOR plane IN SELECT jsonb_object_keys(plane_limits) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'appliance_' || plane) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT %s',
                           'appliance_' || plane, plane_limits ->> plane);
        ELSE
            EXECUTE format('ALTER ROLE %I CONNECTION LIMIT %s',
                           'appliance_' || plane, plane_limits ->> plane);
        END IF;
    END LOOP;
END
$roles$;

DO $connect$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass',
                   current_database());
END
$connect$;

GRANT USAGE ON SCHEMA public TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;

-- The org in force for this transaction, or NULL when none was set (which
-- matches no row).
CREATE FUNCTION appliance_current_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('appliance.org_id', true), '')::uuid $$;

CREATE TABLE orgs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    display_name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Resolving an org name from a URL needs no tenant context.
GRANT SELECT ON orgs TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;
GRANT INSERT, UPDATE ON orgs TO appliance_admin;

-- Signing keys. The private key is stored only as AES-256-GCM ciphertext under
-- a key derived from the owning plane's master secret (appliance/keys).
CREATE TABLE signing_keys (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    plane text NOT NULL CHECK (plane IN ('auth', 'admin', 'pim', 'breakglass')),
    kid text NOT NULL,
    alg text NOT NULL CHECK (alg IN ('ES256', 'EdDSA')),
    public_jwk jsonb NOT NULL,
    private_key_nonce bytea NOT NULL,
    private_key_ciphertext bytea NOT NULL,
    status text NOT NULL CHECK (status IN ('next', 'active', 'retired', 'revoked')),
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at timestamptz,
    -- A retired key stays published until the last token it signed expires.
    publish_until timestamptz,
    PRIMARY KEY (org_id, kid)
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (org_id, plane) WHERE status = 'active';
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
-- Each plane sees only its own keys, so even the ciphertext of another plane's
-- keys stays out of reach.
CREATE POLICY signing_keys_auth ON signing_keys TO appliance_auth
    USING (org_id = appliance_current_org() AND plane = 'auth');
CREATE POLICY signing_keys_pim ON signing_keys TO appliance_pim
    USING (org_id = appliance_current_org() AND plane = 'pim');
CREATE POLICY signing_keys_breakglass ON signing_keys TO appliance_breakglass
    USING (org_id = appliance_current_org() AND plane = 'breakglass');
CREATE POLICY signing_keys_admin ON signing_keys TO appliance_admin
    USING (org_id = appliance_current_org());
GRANT SELECT, INSERT, UPDATE ON signing_keys TO appliance_auth, appliance_pim, appliance_breakglass;
-- The admin plane lists and retires keys but never reads private key material.
GRANT SELECT (org_id, plane, kid, alg, public_jwk, status, created_at, activated_at, retired_at, publish_until),
      UPDATE (status, retired_at, publish_until)
    ON signing_keys TO appliance_admin;

-- Public halves of per-plane sealing keys (X25519). The admin plane seals
-- secrets (break-glass TOTP seeds) to the break-glass plane, which alone can
-- open them.
CREATE TABLE plane_seal_keys (
    plane text PRIMARY KEY CHECK (plane IN ('auth', 'admin', 'pim', 'breakglass')),
    public_key bytea NOT NULL CHECK (length(public_key) = 32),
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON plane_seal_keys TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;
GRANT INSERT, UPDATE ON plane_seal_keys TO appliance_breakglass;

-- Audit: a per-org hash chain. Rows are only ever inserted; the head row per
-- org is locked by each append, which orders the chain.
CREATE TABLE audit_heads (
    org_id uuid PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    hash bytea NOT NULL
);
CREATE TABLE audit_events (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    event_id uuid NOT NULL UNIQUE,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    plane text NOT NULL,
    event_type text NOT NULL,
    actor text NOT NULL,
    subject text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
    failure_reason text,
    source text,
    data jsonb NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_events_type_time ON audit_events (org_id, event_type, occurred_at);
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_heads_org ON audit_heads USING (org_id = appliance_current_org());
CREATE POLICY audit_events_org ON audit_events USING (org_id = appliance_current_org());
GRANT SELECT, INSERT, UPDATE ON audit_heads TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;
GRANT SELECT, INSERT ON audit_events TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;

-- Break-glass accounts. The TOTP seed is sealed to the break-glass plane's
-- X25519 key; the passphrase is an Argon2id hash string.
CREATE TABLE breakglass_accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    role text NOT NULL,
    passphrase_hash text NOT NULL,
    totp_secret_sealed bytea NOT NULL,
    default_ttl_seconds integer NOT NULL DEFAULT 900,
    max_ttl_seconds integer NOT NULL DEFAULT 3600,
    disabled boolean NOT NULL DEFAULT false,
    failed_attempts integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_totp_step bigint NOT NULL DEFAULT 0,
    last_activated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    CHECK (max_ttl_seconds BETWEEN 60 AND 3600),
    CHECK (default_ttl_seconds BETWEEN 60 AND max_ttl_seconds)
);
ALTER TABLE breakglass_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE breakglass_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY breakglass_accounts_org ON breakglass_accounts USING (org_id = appliance_current_org());
GRANT SELECT, UPDATE (failed_attempts, locked_until, last_totp_step, last_activated_at, updated_at)
    ON breakglass_accounts TO appliance_breakglass;
GRANT SELECT, INSERT, UPDATE ON breakglass_accounts TO appliance_admin;

-- Failure counters per (scope, key, window), for rate limits that hold
-- across replicas. Keys are hashes, never raw addresses.
CREATE TABLE rate_limit_windows (
    scope text NOT NULL,
    key text NOT NULL,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (scope, key, window_start)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit_windows
    TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;
