-- Break-glass degraded mode: a change counter that tells the break-glass
-- plane when to refresh its sealed snapshot.
--
-- Triggers bump one global version on every change to what activation needs
-- (orgs, accounts, custodians, break-glass signing keys). The plane polls the
-- counter every few seconds, which is cheaper than reading every org's state,
-- and refreshes its snapshot when the counter moved.

CREATE TABLE breakglass_snapshot_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL
);
INSERT INTO breakglass_snapshot_version (singleton, version) VALUES (true, 0);
GRANT SELECT ON breakglass_snapshot_version TO appliance_breakglass;

-- SECURITY DEFINER: the plane roles may not update the counter directly, but
-- every role whose change matters bumps it through this function.
CREATE FUNCTION breakglass_snapshot_bump() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    AS $$
BEGIN
    UPDATE breakglass_snapshot_version SET version = version + 1;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION breakglass_snapshot_bump() FROM PUBLIC;

CREATE TRIGGER orgs_breakglass_snapshot
    AFTER INSERT OR UPDATE OR DELETE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION breakglass_snapshot_bump();
CREATE TRIGGER breakglass_accounts_snapshot
    AFTER INSERT OR UPDATE OR DELETE ON breakglass_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION breakglass_snapshot_bump();
CREATE TRIGGER breakglass_custodians_snapshot
    AFTER INSERT OR UPDATE OR DELETE ON breakglass_custodians
    FOR EACH STATEMENT EXECUTE FUNCTION breakglass_snapshot_bump();
CREATE TRIGGER signing_keys_breakglass_snapshot
    AFTER INSERT OR UPDATE ON signing_keys
    FOR EACH ROW WHEN (NEW.plane = 'breakglass') EXECUTE FUNCTION breakglass_snapshot_bump();

-- Replay of journal entries sets counters on accounts and custodians.
GRANT UPDATE (failed_attempts, locked_until, last_totp_step, last_activated_at, updated_at)
    ON breakglass_accounts TO appliance_breakglass;

-- Security alerts of the break-glass plane. It delivers them itself, so an
-- activation is announced even while every other plane is down. Each target's
-- HMAC secret is sealed to the break-glass plane's X25519 key: the admin plane
-- sets it and cannot read it back.
CREATE TABLE breakglass_alert_targets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (url ~ '^https?://'),
    secret_sealed bytea NOT NULL,
    payload_format text NOT NULL DEFAULT 'json' CHECK (payload_format IN ('json', 'slack')),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE TABLE breakglass_alerts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    event_id uuid NOT NULL,
    target_id uuid NOT NULL,
    event_type text NOT NULL,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_http_status integer,
    last_error text,
    delivered_at timestamptz,
    UNIQUE (event_id, target_id),
    FOREIGN KEY (org_id, target_id) REFERENCES breakglass_alert_targets (org_id, id) ON DELETE CASCADE
);
CREATE INDEX breakglass_alerts_due ON breakglass_alerts (next_attempt_at) WHERE status = 'pending';
ALTER TABLE breakglass_alert_targets ENABLE ROW LEVEL SECURITY;
ALTER TABLE breakglass_alert_targets FORCE ROW LEVEL SECURITY;
ALTER TABLE breakglass_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE breakglass_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY breakglass_alert_targets_org ON breakglass_alert_targets
    USING (org_id = appliance_current_org());
CREATE POLICY breakglass_alerts_org ON breakglass_alerts USING (org_id = appliance_current_org());
GRANT SELECT ON breakglass_alert_targets TO appliance_breakglass;
GRANT SELECT, INSERT, UPDATE ON breakglass_alerts TO appliance_breakglass;
GRANT SELECT, INSERT, UPDATE, DELETE ON breakglass_alert_targets TO appliance_admin;
GRANT SELECT ON breakglass_alerts TO appliance_admin;

CREATE TRIGGER breakglass_alert_targets_snapshot
    AFTER INSERT OR UPDATE OR DELETE ON breakglass_alert_targets
    FOR EACH STATEMENT EXECUTE FUNCTION breakglass_snapshot_bump();

-- Each plane performs the key rotations requested for it through the admin
-- plane (row-level security already limits each role to its own plane).
GRANT SELECT, UPDATE (status, completed_at, new_kid, failure_reason)
    ON key_rotation_requests TO appliance_auth, appliance_pim, appliance_breakglass;
