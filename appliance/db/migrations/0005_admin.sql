-- Admin plane: role bindings for the admin API, break-glass custodians and
-- key rotation requests, plus the grants the admin plane needs on tables of
-- earlier migrations.

-- Role bindings of the admin API itself. `platform-admin` exists only in the
-- org named `system`, whose members create orgs; every other role applies to
-- the org of the binding alone.
CREATE TABLE admin_role_bindings (
    org_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('platform-admin', 'org-admin', 'security-auditor',
                                       'pim-policy-manager')),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    PRIMARY KEY (org_id, user_id, role),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
ALTER TABLE admin_role_bindings ENABLE ROW LEVEL SECURITY;
ALTER TABLE admin_role_bindings FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_role_bindings_org ON admin_role_bindings
    USING (org_id = appliance_current_org());
GRANT SELECT, INSERT, DELETE ON admin_role_bindings TO appliance_admin;
-- Row locks (SELECT ... FOR UPDATE) need UPDATE on a column: removing a
-- binding locks the org's admins so the last one cannot be removed twice.
GRANT UPDATE (created_by) ON admin_role_bindings TO appliance_admin;

-- Custodians of a break-glass account: each holds its own TOTP seed, sealed
-- to the break-glass plane's X25519 key, so the admin plane that enrolls a
-- custodian cannot read the seed back. Custodian 1's seed is also stored in
-- breakglass_accounts.totp_secret_sealed, which single-TOTP activation reads.
CREATE TABLE breakglass_custodians (
    org_id uuid NOT NULL,
    account_id uuid NOT NULL REFERENCES breakglass_accounts (id) ON DELETE CASCADE,
    position smallint NOT NULL CHECK (position IN (1, 2)),
    name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    totp_secret_sealed bytea NOT NULL,
    last_totp_step bigint NOT NULL DEFAULT 0,
    enrolled_at timestamptz NOT NULL,
    enrolled_by text NOT NULL,
    PRIMARY KEY (account_id, position),
    UNIQUE (account_id, name)
);
ALTER TABLE breakglass_custodians ENABLE ROW LEVEL SECURITY;
ALTER TABLE breakglass_custodians FORCE ROW LEVEL SECURITY;
CREATE POLICY breakglass_custodians_org ON breakglass_custodians
    USING (org_id = appliance_current_org());
GRANT SELECT, INSERT, UPDATE ON breakglass_custodians TO appliance_admin;
GRANT SELECT, UPDATE (last_totp_step) ON breakglass_custodians TO appliance_breakglass;

-- How many custodians must each give a TOTP code to activate the account.
ALTER TABLE breakglass_accounts
    ADD COLUMN custodians_required smallint NOT NULL DEFAULT 1
        CHECK (custodians_required IN (1, 2));

-- Requests to rotate a plane's signing key now. Private keys are generated
-- only inside the owning plane, so the admin plane records the request here
-- and that plane's rotation job performs it and marks it completed.
CREATE TABLE key_rotation_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    plane text NOT NULL CHECK (plane IN ('auth', 'pim', 'breakglass')),
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    completed_at timestamptz,
    new_kid text,
    failure_reason text
);
-- At most one pending request per org and plane: a repeated request joins it.
CREATE UNIQUE INDEX key_rotation_requests_one_pending ON key_rotation_requests (org_id, plane)
    WHERE status = 'pending';
ALTER TABLE key_rotation_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_rotation_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY key_rotation_requests_admin ON key_rotation_requests TO appliance_admin
    USING (org_id = appliance_current_org());
CREATE POLICY key_rotation_requests_auth ON key_rotation_requests TO appliance_auth
    USING (org_id = appliance_current_org() AND plane = 'auth');
CREATE POLICY key_rotation_requests_pim ON key_rotation_requests TO appliance_pim
    USING (org_id = appliance_current_org() AND plane = 'pim');
CREATE POLICY key_rotation_requests_breakglass ON key_rotation_requests TO appliance_breakglass
    USING (org_id = appliance_current_org() AND plane = 'breakglass');
GRANT SELECT, INSERT ON key_rotation_requests TO appliance_admin;
GRANT SELECT, UPDATE (status, completed_at, new_kid, failure_reason)
    ON key_rotation_requests TO appliance_auth, appliance_pim, appliance_breakglass;
