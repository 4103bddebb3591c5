-- PIM: roles with their policies, eligibility, approvers, elevation requests
-- and their grants, issued credentials and their status lists, the
-- notification outbox with webhook deliveries, and the schedule of the
-- advisory-locked jobs.
--
-- A request and its grant share one row (`pim_requests`), so approve, deny,
-- cancel and revoke all lock the same row and serialise.

CREATE TABLE pim_roles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    UNIQUE (org_id, id)
);

-- One policy per role. Durations are seconds.
CREATE TABLE pim_policies (
    role_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    max_duration_seconds integer NOT NULL CHECK (max_duration_seconds BETWEEN 60 AND 604800),
    approvals_required integer NOT NULL CHECK (approvals_required BETWEEN 0 AND 10),
    justification_required boolean NOT NULL DEFAULT true,
    justification_pattern text,
    ticket_required boolean NOT NULL DEFAULT false,
    ticket_pattern text,
    totp_step_up boolean NOT NULL DEFAULT false,
    pending_ttl_seconds integer NOT NULL DEFAULT 3600 CHECK (pending_ttl_seconds BETWEEN 60 AND 604800),
    allow_future_start boolean NOT NULL DEFAULT false,
    max_start_delay_seconds integer NOT NULL DEFAULT 604800 CHECK (max_start_delay_seconds BETWEEN 0 AND 2592000),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, role_id) REFERENCES pim_roles (org_id, id) ON DELETE CASCADE
);

-- Who may request a role, and who may approve it: a user or a group each.
CREATE TABLE pim_eligibility (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    role_id uuid NOT NULL,
    user_id uuid,
    group_id uuid,
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (role_id, user_id, group_id),
    FOREIGN KEY (org_id, role_id) REFERENCES pim_roles (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, group_id) REFERENCES groups (org_id, id) ON DELETE CASCADE
);
CREATE TABLE pim_approvers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    role_id uuid NOT NULL,
    user_id uuid,
    group_id uuid,
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (role_id, user_id, group_id),
    FOREIGN KEY (org_id, role_id) REFERENCES pim_roles (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, group_id) REFERENCES groups (org_id, id) ON DELETE CASCADE
);

-- An elevation request and, once approved, its grant.
--   pending -> denied | expired | cancelled | granted
--   granted -> ended (end_reason: expired, relinquished or revoked)
CREATE TABLE pim_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    role_id uuid NOT NULL,
    requester_id uuid NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds BETWEEN 60 AND 604800),
    justification text NOT NULL DEFAULT '',
    ticket text,
    requested_start timestamptz,
    approvals_required integer NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'denied', 'expired', 'cancelled', 'granted', 'ended')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    decided_at timestamptz,
    starts_at timestamptz,
    ends_at timestamptz,
    activated_at timestamptz,
    expiring_notified_at timestamptz,
    ended_at timestamptz,
    end_reason text CHECK (end_reason IN ('expired', 'relinquished', 'revoked')),
    ended_by text,
    CHECK ((status IN ('granted', 'ended')) = (starts_at IS NOT NULL AND ends_at IS NOT NULL)),
    CHECK ((status = 'ended') = (end_reason IS NOT NULL)),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, role_id) REFERENCES pim_roles (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, requester_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX pim_requests_pending ON pim_requests (expires_at) WHERE status = 'pending';
CREATE INDEX pim_requests_granted ON pim_requests (ends_at) WHERE status = 'granted';
CREATE INDEX pim_requests_requester ON pim_requests (org_id, requester_id, created_at);

-- One decision per approver and request: the primary key makes each
-- approver count once.
CREATE TABLE pim_decisions (
    request_id uuid NOT NULL,
    org_id uuid NOT NULL,
    approver_id uuid NOT NULL,
    decision text NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment text NOT NULL DEFAULT '',
    decided_at timestamptz NOT NULL,
    PRIMARY KEY (request_id, approver_id),
    FOREIGN KEY (org_id, request_id) REFERENCES pim_requests (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, approver_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

-- Token Status Lists (draft-ietf-oauth-status-list), one bit per credential.
-- `version` grows with every status change; `token` caches the signed list
-- token of `token_version`, so an unchanged list is not signed again.
CREATE TABLE pim_status_lists (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    capacity integer NOT NULL CHECK (capacity > 0 AND capacity % 8 = 0),
    allocated integer NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 1,
    token text,
    token_version bigint,
    token_iat timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE pim_credentials (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    request_id uuid NOT NULL,
    list_id uuid NOT NULL,
    idx integer NOT NULL CHECK (idx >= 0),
    holder_jkt text NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    UNIQUE (list_id, idx),
    FOREIGN KEY (org_id, request_id) REFERENCES pim_requests (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, list_id) REFERENCES pim_status_lists (org_id, id) ON DELETE CASCADE
);
CREATE INDEX pim_credentials_request ON pim_credentials (request_id);

-- Webhooks. The HMAC secret is sealed to the PIM plane's X25519 key, so the
-- admin plane can set it without being able to read it back.
CREATE TABLE notify_webhooks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (url ~ '^https?://'),
    secret_sealed bytea NOT NULL,
    payload_format text NOT NULL DEFAULT 'json' CHECK (payload_format IN ('json', 'slack')),
    events text[] NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);

-- Transactional outbox: an event row commits with the change it reports, and
-- its deliveries (one per subscribed webhook) are created in the same
-- transaction.
CREATE TABLE notify_outbox (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    event_type text NOT NULL,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (org_id, id)
);
CREATE TABLE notify_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    event_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_http_status integer,
    last_error text,
    delivered_at timestamptz,
    UNIQUE (event_id, webhook_id),
    FOREIGN KEY (org_id, event_id) REFERENCES notify_outbox (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, webhook_id) REFERENCES notify_webhooks (org_id, id) ON DELETE CASCADE
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (next_attempt_at) WHERE status = 'pending';

DO $rls$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['pim_roles', 'pim_policies', 'pim_eligibility', 'pim_approvers',
                                'pim_requests', 'pim_decisions', 'pim_status_lists', 'pim_credentials',
                                'notify_webhooks', 'notify_outbox', 'notify_deliveries'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format('CREATE POLICY %I ON %I USING (org_id = appliance_current_org())', name || '_org', name);
    END LOOP;
END
$rls$;

-- The PIM plane reads its model and runs the request lifecycle; the admin
-- plane manages roles, policies, eligibility, approvers and webhooks, and may
-- revoke a grant.
GRANT SELECT ON pim_roles, pim_policies, pim_eligibility, pim_approvers, notify_webhooks TO appliance_pim;
GRANT SELECT, INSERT, UPDATE ON pim_requests, pim_decisions, pim_status_lists, pim_credentials,
    notify_outbox, notify_deliveries TO appliance_pim;
GRANT SELECT, INSERT, UPDATE, DELETE ON pim_roles, pim_policies, pim_eligibility, pim_approvers,
    notify_webhooks TO appliance_admin;
GRANT SELECT, UPDATE ON pim_requests, pim_status_lists, pim_credentials TO appliance_admin;
GRANT SELECT ON pim_decisions TO appliance_admin;
GRANT SELECT, INSERT ON notify_outbox, notify_deliveries TO appliance_admin;

-- Read-side views. `security_invoker` makes row-level security apply as the
-- querying plane role; without it a view runs as its owner and would see
-- every org.
CREATE VIEW pim_role_view WITH (security_invoker = true) AS
    SELECT r.org_id, r.id, r.name, r.description, p.max_duration_seconds, p.approvals_required,
           p.justification_required, p.justification_pattern, p.ticket_required, p.ticket_pattern,
           p.totp_step_up, p.pending_ttl_seconds, p.allow_future_start, p.max_start_delay_seconds
    FROM pim_roles r JOIN pim_policies p ON p.role_id = r.id;
CREATE VIEW pim_request_view WITH (security_invoker = true) AS
    SELECT q.id, q.org_id, q.role_id, r.name AS role, q.requester_id, u.username AS requester,
           u.display_name AS requester_display_name, q.duration_seconds, q.justification, q.ticket,
           q.requested_start, q.approvals_required, q.status, q.created_at, q.expires_at,
           q.decided_at, q.starts_at, q.ends_at, q.activated_at, q.ended_at, q.end_reason, q.ended_by
    FROM pim_requests q JOIN pim_roles r ON r.id = q.role_id JOIN users u ON u.id = q.requester_id;
GRANT SELECT ON pim_role_view, pim_request_view TO appliance_pim, appliance_admin;

-- Schedule of the advisory-locked jobs (appliance/jobs.py). Not org-scoped:
-- a job walks every org itself.
CREATE TABLE job_schedule (
    name text PRIMARY KEY,
    next_run_at timestamptz NOT NULL,
    last_started_at timestamptz,
    last_finished_at timestamptz,
    last_plane text,
    runs bigint NOT NULL DEFAULT 0
);
GRANT SELECT, INSERT, UPDATE ON job_schedule
    TO appliance_auth, appliance_admin, appliance_pim, appliance_breakglass;
