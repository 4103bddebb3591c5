-- Identity: users, groups and sessions for the embedded authentication that
-- every plane uses (password + TOTP). A user's TOTP seed is sealed once per
-- plane to that plane's X25519 key, so each plane can check codes and none can
-- read another plane's copy.

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    username text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    display_name text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    failed_attempts integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_totp_step bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, username),
    UNIQUE (org_id, id)
);
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_org ON users USING (org_id = appliance_current_org());
GRANT SELECT, UPDATE (failed_attempts, locked_until, last_totp_step, updated_at)
    ON users TO appliance_auth, appliance_pim;
GRANT SELECT, INSERT, UPDATE ON users TO appliance_admin;

CREATE TABLE user_totp_seals (
    org_id uuid NOT NULL,
    user_id uuid NOT NULL,
    plane text NOT NULL CHECK (plane IN ('auth', 'admin', 'pim', 'breakglass')),
    sealed bytea NOT NULL,
    PRIMARY KEY (user_id, plane),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
ALTER TABLE user_totp_seals ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_totp_seals FORCE ROW LEVEL SECURITY;
CREATE POLICY user_totp_seals_auth ON user_totp_seals TO appliance_auth
    USING (org_id = appliance_current_org() AND plane = 'auth');
CREATE POLICY user_totp_seals_pim ON user_totp_seals TO appliance_pim
    USING (org_id = appliance_current_org() AND plane = 'pim');
CREATE POLICY user_totp_seals_admin ON user_totp_seals TO appliance_admin
    USING (org_id = appliance_current_org());
GRANT SELECT ON user_totp_seals TO appliance_auth, appliance_pim;
-- The admin plane writes every plane's copy (sealed to public keys) and reads
-- back only its own, which it can open.
GRANT SELECT, INSERT, UPDATE, DELETE ON user_totp_seals TO appliance_admin;

CREATE TABLE groups (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    UNIQUE (org_id, id)
);
CREATE TABLE group_members (
    org_id uuid NOT NULL,
    group_id uuid NOT NULL,
    user_id uuid NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (org_id, group_id) REFERENCES groups (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE groups FORCE ROW LEVEL SECURITY;
ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE group_members FORCE ROW LEVEL SECURITY;
CREATE POLICY groups_org ON groups USING (org_id = appliance_current_org());
CREATE POLICY group_members_org ON group_members USING (org_id = appliance_current_org());
GRANT SELECT ON groups, group_members TO appliance_auth, appliance_pim;
GRANT SELECT, INSERT, UPDATE, DELETE ON groups, group_members TO appliance_admin;

-- Sessions of the embedded login. Only a SHA-256 of the token is stored, so a
-- database reader cannot replay a session.
CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    user_id uuid NOT NULL,
    plane text NOT NULL CHECK (plane IN ('auth', 'admin', 'pim', 'breakglass')),
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_auth ON sessions TO appliance_auth
    USING (org_id = appliance_current_org() AND plane = 'auth');
CREATE POLICY sessions_pim ON sessions TO appliance_pim
    USING (org_id = appliance_current_org() AND plane = 'pim');
CREATE POLICY sessions_admin ON sessions TO appliance_admin
    USING (org_id = appliance_current_org() AND plane = 'admin');
GRANT SELECT, INSERT, UPDATE (revoked_at) ON sessions TO appliance_auth, appliance_pim, appliance_admin;

-- Every plane that logs users in publishes its sealing key.
GRANT INSERT, UPDATE ON plane_seal_keys TO appliance_auth, appliance_pim, appliance_admin;
