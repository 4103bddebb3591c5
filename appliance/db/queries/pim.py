"""Queries of the PIM plane: roles and policies, requests and grants, credentials, status lists."""

from appliance.db.queries import query

# Roles, policies, eligibility and approvers.

PIM_ROLE_INSERT = query(
    "pim_role_insert",
    "INSERT INTO pim_roles (org_id, name, description) VALUES ($1, $2, $3) RETURNING id",
)
PIM_POLICY_UPSERT = query(
    "pim_policy_upsert",
    """
    INSERT INTO pim_policies (role_id, org_id, max_duration_seconds, approvals_required,
                              justification_required, justification_pattern, ticket_required,
                              ticket_pattern, totp_step_up, pending_ttl_seconds,
                              allow_future_start, max_start_delay_seconds, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (role_id) DO UPDATE SET
        max_duration_seconds = EXCLUDED.max_duration_seconds,
        approvals_required = EXCLUDED.approvals_required,
        justification_required = EXCLUDED.justification_required,
        justification_pattern = EXCLUDED.justification_pattern,
        ticket_required = EXCLUDED.ticket_required,
        ticket_pattern = EXCLUDED.ticket_pattern,
        totp_step_up = EXCLUDED.totp_step_up,
        pending_ttl_seconds = EXCLUDED.pending_ttl_seconds,
        allow_future_start = EXCLUDED.allow_future_start,
        max_start_delay_seconds = EXCLUDED.max_start_delay_seconds,
        updated_at = EXCLUDED.updated_at
    """,
)
PIM_ELIGIBILITY_INSERT = query(
    "pim_eligibility_insert",
    """
    INSERT INTO pim_eligibility (org_id, role_id, user_id, group_id) VALUES ($1, $2, $3, $4)
    ON CONFLICT DO NOTHING
    """,
)
PIM_APPROVER_INSERT = query(
    "pim_approver_insert",
    """
    INSERT INTO pim_approvers (org_id, role_id, user_id, group_id) VALUES ($1, $2, $3, $4)
    ON CONFLICT DO NOTHING
    """,
)
PIM_ROLE_BY_NAME = query(
    "pim_role_by_name", "SELECT * FROM pim_role_view WHERE org_id = $1 AND name = $2"
)
# Membership tests: directly or through one of the user's groups.
PIM_IS_ELIGIBLE = query(
    "pim_is_eligible",
    """
    SELECT EXISTS (
        SELECT 1 FROM pim_eligibility e
        WHERE e.org_id = $1 AND e.role_id = $2
          AND (e.user_id = $3 OR e.group_id IN
               (SELECT m.group_id FROM group_members m WHERE m.org_id = $1 AND m.user_id = $3))
    )
    """,
)
PIM_IS_APPROVER = query(
    "pim_is_approver",
    """
    SELECT EXISTS (
        SELECT 1 FROM pim_approvers a
        WHERE a.org_id = $1 AND a.role_id = $2
          AND (a.user_id = $3 OR a.group_id IN
               (SELECT m.group_id FROM group_members m WHERE m.org_id = $1 AND m.user_id = $3))
    )
    """,
)
PIM_ROLES_FOR_USER = query(
    "pim_roles_for_user",
    """
    SELECT r.*,
        EXISTS (SELECT 1 FROM pim_eligibility e WHERE e.role_id = r.id AND (e.user_id = $2
                OR e.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = $2)))
            AS eligible,
        EXISTS (SELECT 1 FROM pim_approvers a WHERE a.role_id = r.id AND (a.user_id = $2
                OR a.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = $2)))
            AS approver
    FROM pim_role_view r
    WHERE r.org_id = $1
    ORDER BY r.name
    """,
)

# Requests and grants.

PIM_REQUEST_INSERT = query(
    "pim_request_insert",
    """
    INSERT INTO pim_requests (org_id, role_id, requester_id, duration_seconds, justification,
                              ticket, requested_start, approvals_required, status, created_at,
                              expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
    RETURNING id
    """,
)
# Every state change of a request starts here: the row lock serialises
# approve, deny, cancel, revoke and credential issuance on one request. The
# caller reads the row with PIM_REQUEST_GET after the lock is granted; under
# READ COMMITTED that read takes a new snapshot, so it sees the outcome of
# the transaction it waited for.
PIM_REQUEST_LOCK = query(
    "pim_request_lock",
    "SELECT id FROM pim_requests WHERE org_id = $1 AND id = $2 FOR UPDATE",
)
PIM_REQUEST_GET = query(
    "pim_request_get", "SELECT * FROM pim_request_view WHERE org_id = $1 AND id = $2"
)
# Requests the user made, or may decide on as an approver of the role.
PIM_REQUESTS_VISIBLE = query(
    "pim_requests_visible",
    """
    SELECT v.*,
        (SELECT count(*) FROM pim_decisions d WHERE d.request_id = v.id AND d.decision = 'approve')
            AS approvals,
        EXISTS (SELECT 1 FROM pim_approvers a WHERE a.role_id = v.role_id AND (a.user_id = $2
                OR a.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = $2)))
            AS viewer_is_approver,
        (SELECT d.decision FROM pim_decisions d WHERE d.request_id = v.id AND d.approver_id = $2)
            AS viewer_decision
    FROM pim_request_view v
    WHERE v.org_id = $1
      AND ($3::boolean IS FALSE OR (v.status = 'pending' AND v.expires_at > $4))
      AND (v.requester_id = $2 OR EXISTS (
            SELECT 1 FROM pim_approvers a WHERE a.role_id = v.role_id AND (a.user_id = $2
                OR a.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = $2))))
    ORDER BY v.created_at DESC
    LIMIT $5
    """,
)
PIM_DECISION_INSERT = query(
    "pim_decision_insert",
    """
    INSERT INTO pim_decisions (request_id, org_id, approver_id, decision, comment, decided_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (request_id, approver_id) DO NOTHING
    RETURNING decided_at
    """,
)
PIM_DECISION_BY_APPROVER = query(
    "pim_decision_by_approver",
    "SELECT decision FROM pim_decisions WHERE request_id = $1 AND approver_id = $2",
)
PIM_DECISIONS_FOR_REQUEST = query(
    "pim_decisions_for_request",
    """
    SELECT u.username AS approver, d.decision, d.comment, d.decided_at
    FROM pim_decisions d JOIN users u ON u.id = d.approver_id
    WHERE d.org_id = $1 AND d.request_id = $2
    ORDER BY d.decided_at, u.username
    """,
)
PIM_REQUEST_SET_STATUS = query(
    "pim_request_set_status",
    "UPDATE pim_requests SET status = $2, decided_at = $3 WHERE id = $1",
)
PIM_REQUEST_GRANT = query(
    "pim_request_grant",
    """
    UPDATE pim_requests
    SET status = 'granted', decided_at = $2, starts_at = $3, ends_at = $4, activated_at = $5
    WHERE id = $1
    """,
)
PIM_REQUEST_END = query(
    "pim_request_end",
    """
    UPDATE pim_requests SET status = 'ended', end_reason = $2, ended_at = $3, ended_by = $4
    WHERE id = $1
    """,
)

# Jobs: each runs under its advisory lock with the org context set.

PIM_REQUESTS_EXPIRE_DUE = query(
    "pim_requests_expire_due",
    """
    UPDATE pim_requests q SET status = 'expired', decided_at = q.expires_at
    FROM pim_roles r, users u
    WHERE r.id = q.role_id AND u.id = q.requester_id
      AND q.org_id = $1 AND q.status = 'pending' AND q.expires_at <= $2
    RETURNING q.id, r.name AS role, u.username AS requester, q.expires_at
    """,
)
PIM_GRANTS_ACTIVATE_DUE = query(
    "pim_grants_activate_due",
    """
    UPDATE pim_requests q SET activated_at = $2
    FROM pim_roles r, users u
    WHERE r.id = q.role_id AND u.id = q.requester_id
      AND q.org_id = $1 AND q.status = 'granted' AND q.activated_at IS NULL
      AND q.starts_at <= $2 AND q.ends_at > $2
    RETURNING q.id, r.name AS role, u.username AS requester, q.starts_at, q.ends_at
    """,
)
PIM_GRANTS_EXPIRING_SOON = query(
    "pim_grants_expiring_soon",
    """
    UPDATE pim_requests q SET expiring_notified_at = $2
    FROM pim_roles r, users u
    WHERE r.id = q.role_id AND u.id = q.requester_id
      AND q.org_id = $1 AND q.status = 'granted' AND q.expiring_notified_at IS NULL
      AND q.starts_at <= $2 AND q.ends_at > $2 AND q.ends_at <= $3
    RETURNING q.id, r.name AS role, u.username AS requester, q.ends_at
    """,
)
PIM_GRANTS_END_DUE = query(
    "pim_grants_end_due",
    """
    UPDATE pim_requests q
    SET status = 'ended', end_reason = 'expired', ended_at = q.ends_at, ended_by = 'system'
    FROM pim_roles r, users u
    WHERE r.id = q.role_id AND u.id = q.requester_id
      AND q.org_id = $1 AND q.status = 'granted' AND q.ends_at <= $2
    RETURNING q.id, r.name AS role, u.username AS requester, q.ends_at
    """,
)

# Credentials and status lists.

PIM_STATUS_LIST_OPEN = query(
    "pim_status_list_open",
    """
    SELECT id, capacity, allocated FROM pim_status_lists
    WHERE org_id = $1 AND allocated < capacity * 3 / 4
    ORDER BY created_at DESC LIMIT 1
    FOR UPDATE
    """,
)
PIM_STATUS_LIST_LOCK_ORG = query(
    "pim_status_list_lock_org",
    "SELECT pg_advisory_xact_lock(hashtextextended('pim-status-list:' || $1::text, 0))",
)
PIM_STATUS_LIST_INSERT = query(
    "pim_status_list_insert",
    """
    INSERT INTO pim_status_lists (org_id, capacity, created_at) VALUES ($1, $2, $3)
    RETURNING id, capacity, allocated
    """,
)
PIM_STATUS_LIST_ALLOCATED = query(
    "pim_status_list_allocated",
    "UPDATE pim_status_lists SET allocated = allocated + 1 WHERE id = $1",
)
PIM_CREDENTIAL_INSERT = query(
    "pim_credential_insert",
    """
    INSERT INTO pim_credentials (id, org_id, request_id, list_id, idx, holder_jkt, issued_at,
                                 expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (list_id, idx) DO NOTHING
    RETURNING id
    """,
)
PIM_CREDENTIALS_REVOKE_FOR_REQUEST = query(
    "pim_credentials_revoke_for_request",
    """
    UPDATE pim_credentials SET revoked_at = $2
    WHERE request_id = $1 AND revoked_at IS NULL
    RETURNING list_id
    """,
)
PIM_STATUS_LIST_BUMP = query(
    "pim_status_list_bump",
    "UPDATE pim_status_lists SET version = version + 1 WHERE id = ANY($1::uuid[])",
)
PIM_STATUS_LIST_GET = query(
    "pim_status_list_get",
    """
    SELECT id, capacity, version, token, token_version, token_iat FROM pim_status_lists
    WHERE org_id = $1 AND id = $2
    """,
)
PIM_STATUS_LIST_REVOKED = query(
    "pim_status_list_revoked",
    "SELECT idx FROM pim_credentials WHERE list_id = $1 AND revoked_at IS NOT NULL",
)
PIM_STATUS_LIST_STORE_TOKEN = query(
    "pim_status_list_store_token",
    """
    UPDATE pim_status_lists SET token = $2, token_version = $3, token_iat = $4
    WHERE id = $1 AND version = $3 AND (token_iat IS NULL OR token_iat <= $4)
    """,
)
# Lists whose cached token is missing, outdated, or older than $2.
PIM_STATUS_LISTS_STALE = query(
    "pim_status_lists_stale",
    """
    SELECT id FROM pim_status_lists
    WHERE org_id = $1
      AND (token IS NULL OR token_version IS DISTINCT FROM version OR token_iat <= $2)
    """,
)
