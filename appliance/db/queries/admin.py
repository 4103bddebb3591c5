"""Queries of the admin plane: users, groups, role bindings, break-glass
accounts and custodians, keys, rotation requests and audit search."""

from appliance.db.queries import query

# Users.
ADMIN_USERS_LIST = query(
    "admin_users_list",
    """
    SELECT u.id, u.username, u.display_name, u.email, u.disabled, u.failed_attempts,
           u.locked_until, u.created_at, u.updated_at,
           COALESCE(array_agg(s.plane ORDER BY s.plane) FILTER (WHERE s.plane IS NOT NULL),
                    '{}') AS totp_planes
    FROM users u LEFT JOIN user_totp_seals s ON s.user_id = u.id
    WHERE u.org_id = $1
    GROUP BY u.id ORDER BY u.username LIMIT $2
    """,
)
ADMIN_USER_GET = query(
    "admin_user_get",
    """
    SELECT u.id, u.username, u.display_name, u.email, u.disabled, u.failed_attempts,
           u.locked_until, u.created_at, u.updated_at,
           COALESCE(array_agg(s.plane ORDER BY s.plane) FILTER (WHERE s.plane IS NOT NULL),
                    '{}') AS totp_planes
    FROM users u LEFT JOIN user_totp_seals s ON s.user_id = u.id
    WHERE u.org_id = $1 AND u.username = $2
    GROUP BY u.id
    """,
)
ADMIN_USER_LOCK = query(
    "admin_user_lock",
    """
    SELECT id, username, display_name, email, disabled, failed_attempts, locked_until
    FROM users WHERE org_id = $1 AND username = $2 FOR UPDATE
    """,
)
ADMIN_USER_INSERT = query(
    "admin_user_insert",
    """
    INSERT INTO users (org_id, username, display_name, email, password_hash, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $6)
    ON CONFLICT (org_id, username) DO NOTHING
    RETURNING id
    """,
)
ADMIN_USER_SET_DISABLED = query(
    "admin_user_set_disabled", "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1"
)
ADMIN_USER_SET_PASSWORD = query(
    "admin_user_set_password",
    "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
)
ADMIN_USER_UNLOCK = query(
    "admin_user_unlock",
    "UPDATE users SET failed_attempts = 0, locked_until = NULL, updated_at = $2 WHERE id = $1",
)
ADMIN_USER_UPDATE_PROFILE = query(
    "admin_user_update_profile",
    "UPDATE users SET display_name = $2, email = $3, updated_at = $4 WHERE id = $1",
)
ADMIN_USER_TOTP_SEALS_DELETE = query(
    "admin_user_totp_seals_delete", "DELETE FROM user_totp_seals WHERE user_id = $1"
)

# Groups.
ADMIN_GROUPS_LIST = query(
    "admin_groups_list",
    """
    SELECT g.id, g.name, g.created_at, count(m.user_id) AS members
    FROM groups g LEFT JOIN group_members m ON m.group_id = g.id
    WHERE g.org_id = $1 GROUP BY g.id ORDER BY g.name LIMIT $2
    """,
)
ADMIN_GROUP_GET = query(
    "admin_group_get", "SELECT id, name, created_at FROM groups WHERE org_id = $1 AND name = $2"
)
ADMIN_GROUP_INSERT = query(
    "admin_group_insert",
    """
    INSERT INTO groups (org_id, name, created_at) VALUES ($1, $2, $3)
    ON CONFLICT (org_id, name) DO NOTHING RETURNING id, name, created_at
    """,
)
ADMIN_GROUP_DELETE = query("admin_group_delete", "DELETE FROM groups WHERE id = $1")
ADMIN_GROUP_MEMBERS = query(
    "admin_group_members",
    """
    SELECT u.username FROM group_members m JOIN users u ON u.id = m.user_id
    WHERE m.org_id = $1 AND m.group_id = $2 ORDER BY u.username
    """,
)
ADMIN_GROUP_MEMBER_ADD = query(
    "admin_group_member_add",
    """
    INSERT INTO group_members (org_id, group_id, user_id) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING RETURNING user_id
    """,
)
ADMIN_GROUP_MEMBER_REMOVE = query(
    "admin_group_member_remove",
    "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2 RETURNING user_id",
)

# Role bindings of the admin API.
ADMIN_ROLES_OF_USER = query(
    "admin_roles_of_user",
    "SELECT role FROM admin_role_bindings WHERE org_id = $1 AND user_id = $2 ORDER BY role",
)
ADMIN_BINDINGS_LIST = query(
    "admin_bindings_list",
    """
    SELECT u.username, b.role, b.created_at, b.created_by
    FROM admin_role_bindings b JOIN users u ON u.id = b.user_id
    WHERE b.org_id = $1 ORDER BY u.username, b.role
    """,
)
ADMIN_BINDING_INSERT = query(
    "admin_binding_insert",
    """
    INSERT INTO admin_role_bindings (org_id, user_id, role, created_at, created_by)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT DO NOTHING RETURNING role
    """,
)
ADMIN_BINDING_DELETE = query(
    "admin_binding_delete",
    """
    DELETE FROM admin_role_bindings WHERE org_id = $1 AND user_id = $2 AND role = $3
    RETURNING role
    """,
)
# Locks the org's bindings of one role, so two concurrent removals cannot both
# pass the "another admin remains" check.
ADMIN_BINDINGS_OF_ROLE_LOCK = query(
    "admin_bindings_of_role_lock",
    """
    SELECT b.user_id FROM admin_role_bindings b JOIN users u ON u.id = b.user_id
    WHERE b.org_id = $1 AND b.role = $2 AND NOT u.disabled
    FOR UPDATE OF b
    """,
)

# Break-glass accounts and custodians.
ADMIN_BREAKGLASS_LIST = query(
    "admin_breakglass_list",
    """
    SELECT a.id, a.name, a.role, a.default_ttl_seconds, a.max_ttl_seconds, a.disabled,
           a.failed_attempts, a.locked_until, a.last_activated_at, a.custodians_required,
           a.created_at, a.updated_at,
           COALESCE(array_agg(c.name ORDER BY c.position) FILTER (WHERE c.name IS NOT NULL),
                    '{}') AS custodians
    FROM breakglass_accounts a LEFT JOIN breakglass_custodians c ON c.account_id = a.id
    WHERE a.org_id = $1 GROUP BY a.id ORDER BY a.name LIMIT $2
    """,
)
ADMIN_BREAKGLASS_LOCK = query(
    "admin_breakglass_lock",
    """
    SELECT id, name, role, default_ttl_seconds, max_ttl_seconds, disabled, failed_attempts,
           locked_until, last_activated_at, custodians_required, created_at, updated_at
    FROM breakglass_accounts WHERE org_id = $1 AND name = $2 FOR UPDATE
    """,
)
ADMIN_BREAKGLASS_INSERT = query(
    "admin_breakglass_insert",
    """
    INSERT INTO breakglass_accounts (org_id, name, role, passphrase_hash, totp_secret_sealed,
                                     default_ttl_seconds, max_ttl_seconds, custodians_required,
                                     created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
    ON CONFLICT (org_id, name) DO NOTHING
    RETURNING id
    """,
)
ADMIN_BREAKGLASS_SET_PASSPHRASE = query(
    "admin_breakglass_set_passphrase",
    "UPDATE breakglass_accounts SET passphrase_hash = $2, updated_at = $3 WHERE id = $1",
)
ADMIN_BREAKGLASS_SET_PRIMARY_TOTP = query(
    "admin_breakglass_set_primary_totp",
    "UPDATE breakglass_accounts SET totp_secret_sealed = $2, updated_at = $3 WHERE id = $1",
)
ADMIN_BREAKGLASS_UPDATE = query(
    "admin_breakglass_update",
    """
    UPDATE breakglass_accounts
    SET role = $2, default_ttl_seconds = $3, max_ttl_seconds = $4, disabled = $5,
        custodians_required = $6, updated_at = $7
    WHERE id = $1
    """,
)
ADMIN_BREAKGLASS_UNLOCK = query(
    "admin_breakglass_unlock",
    """
    UPDATE breakglass_accounts SET failed_attempts = 0, locked_until = NULL, updated_at = $2
    WHERE id = $1
    """,
)
ADMIN_CUSTODIANS_OF_ACCOUNT = query(
    "admin_custodians_of_account",
    """
    SELECT position, name, enrolled_at, enrolled_by FROM breakglass_custodians
    WHERE org_id = $1 AND account_id = $2 ORDER BY position
    """,
)
ADMIN_CUSTODIAN_UPSERT = query(
    "admin_custodian_upsert",
    """
    INSERT INTO breakglass_custodians (org_id, account_id, position, name, totp_secret_sealed,
                                       enrolled_at, enrolled_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (account_id, position) DO UPDATE
    SET name = EXCLUDED.name, totp_secret_sealed = EXCLUDED.totp_secret_sealed,
        last_totp_step = 0, enrolled_at = EXCLUDED.enrolled_at,
        enrolled_by = EXCLUDED.enrolled_by
    """,
)
ADMIN_AUDIT_RECENT_FOR_SUBJECT = query(
    "admin_audit_recent_for_subject",
    """
    SELECT seq, occurred_at, event_type, actor, outcome, failure_reason, data
    FROM audit_events
    WHERE org_id = $1 AND subject = $2 AND event_type = ANY($3::text[])
    ORDER BY seq DESC LIMIT $4
    """,
)

# Signing keys (public columns only: the admin role cannot read the others)
# and rotation requests.
ADMIN_KEYS_LIST = query(
    "admin_keys_list",
    """
    SELECT plane, kid, alg, status, created_at, activated_at, retired_at, publish_until
    FROM signing_keys
    WHERE org_id = $1 AND ($2::text IS NULL OR plane = $2)
    ORDER BY plane, created_at
    """,
)
ADMIN_KEY_LOCK = query(
    "admin_key_lock",
    """
    SELECT plane, kid, alg, status, created_at, activated_at, retired_at, publish_until
    FROM signing_keys WHERE org_id = $1 AND kid = $2 FOR UPDATE
    """,
)
ADMIN_KEY_SET_STATUS = query(
    "admin_key_set_status",
    """
    UPDATE signing_keys SET status = $3, retired_at = $4, publish_until = $5
    WHERE org_id = $1 AND kid = $2
    """,
)
ADMIN_ROTATION_REQUEST_INSERT = query(
    "admin_rotation_request_insert",
    """
    INSERT INTO key_rotation_requests (org_id, plane, requested_by, requested_at, reason)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (org_id, plane) WHERE status = 'pending' DO NOTHING
    RETURNING id, plane, requested_by, requested_at, reason, status, completed_at, new_kid,
              failure_reason
    """,
)
ADMIN_ROTATION_REQUEST_PENDING = query(
    "admin_rotation_request_pending",
    """
    SELECT id, plane, requested_by, requested_at, reason, status, completed_at, new_kid,
           failure_reason
    FROM key_rotation_requests WHERE org_id = $1 AND plane = $2 AND status = 'pending'
    """,
)
ADMIN_ROTATION_REQUESTS_LIST = query(
    "admin_rotation_requests_list",
    """
    SELECT id, plane, requested_by, requested_at, reason, status, completed_at, new_kid,
           failure_reason
    FROM key_rotation_requests WHERE org_id = $1 ORDER BY requested_at DESC LIMIT $2
    """,
)

# Audit search and export.
ADMIN_AUDIT_SEARCH = query(
    "admin_audit_search",
    """
    SELECT seq, event_id, occurred_at, plane, event_type, actor, subject, outcome,
           failure_reason, source, data, prev_hash, hash
    FROM audit_events
    WHERE org_id = $1 AND seq > $2
      AND ($3::timestamptz IS NULL OR occurred_at >= $3)
      AND ($4::timestamptz IS NULL OR occurred_at < $4)
      AND ($5::text IS NULL OR actor = $5)
      AND ($6::text IS NULL OR event_type = $6)
      AND ($7::text IS NULL OR subject = $7)
    ORDER BY seq LIMIT $8
    """,
)
ADMIN_ORG_INSERT = query(
    "admin_org_insert",
    """
    INSERT INTO orgs (name, display_name, created_at) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO NOTHING RETURNING id, name, display_name, created_at
    """,
)
ADMIN_ORG_GET = query(
    "admin_org_get", "SELECT id, name, display_name, created_at FROM orgs WHERE name = $1"
)
ADMIN_ORGS_LIST = query(
    "admin_orgs_list",
    "SELECT id, name, display_name, created_at FROM orgs ORDER BY name LIMIT $1",
)
ADMIN_AUDIT_RECENT = query(
    "admin_audit_recent",
    """
    SELECT seq, event_id, occurred_at, plane, event_type, actor, subject, outcome,
           failure_reason, source, data, prev_hash, hash
    FROM audit_events WHERE org_id = $1 ORDER BY seq DESC LIMIT $2
    """,
)

# PIM roles, policies, eligibility and approvers (tables of the PIM migration).
ADMIN_PIM_ROLE_INSERT = query(
    "admin_pim_role_insert",
    """
    INSERT INTO pim_roles (org_id, name, description, created_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (org_id, name) DO NOTHING RETURNING id
    """,
)
ADMIN_PIM_ROLE_UPDATE = query(
    "admin_pim_role_update", "UPDATE pim_roles SET description = $2 WHERE id = $1"
)
ADMIN_PIM_ROLE_DELETE = query("admin_pim_role_delete", "DELETE FROM pim_roles WHERE id = $1")
ADMIN_PIM_ROLES = query(
    "admin_pim_roles",
    """
    SELECT r.id, r.name, r.description, r.created_at, p.max_duration_seconds,
           p.approvals_required, p.justification_required, p.justification_pattern,
           p.ticket_required, p.ticket_pattern, p.totp_step_up, p.pending_ttl_seconds,
           p.allow_future_start, p.max_start_delay_seconds, p.updated_at
    FROM pim_roles r JOIN pim_policies p ON p.role_id = r.id
    WHERE r.org_id = $1 AND ($2::text IS NULL OR r.name = $2)
    ORDER BY r.name LIMIT $3
    """,
)
ADMIN_PIM_ROLE_LOCK = query(
    "admin_pim_role_lock",
    "SELECT id FROM pim_roles WHERE org_id = $1 AND name = $2 FOR UPDATE",
)
ADMIN_PIM_PRINCIPALS = query(
    "admin_pim_principals",
    """
    SELECT 'eligible' AS relation, 'users' AS kind, u.username AS name
    FROM pim_eligibility e JOIN users u ON u.id = e.user_id WHERE e.org_id = $1 AND e.role_id = $2
    UNION ALL
    SELECT 'eligible', 'groups', g.name
    FROM pim_eligibility e JOIN groups g ON g.id = e.group_id WHERE e.org_id = $1 AND e.role_id = $2
    UNION ALL
    SELECT 'approvers', 'users', u.username
    FROM pim_approvers a JOIN users u ON u.id = a.user_id WHERE a.org_id = $1 AND a.role_id = $2
    UNION ALL
    SELECT 'approvers', 'groups', g.name
    FROM pim_approvers a JOIN groups g ON g.id = a.group_id WHERE a.org_id = $1 AND a.role_id = $2
    ORDER BY 1, 2, 3
    """,
)
ADMIN_PIM_ELIGIBILITY_DELETE = query(
    "admin_pim_eligibility_delete",
    """
    DELETE FROM pim_eligibility
    WHERE role_id = $1 AND user_id IS NOT DISTINCT FROM $2 AND group_id IS NOT DISTINCT FROM $3
    RETURNING id
    """,
)
ADMIN_PIM_APPROVER_DELETE = query(
    "admin_pim_approver_delete",
    """
    DELETE FROM pim_approvers
    WHERE role_id = $1 AND user_id IS NOT DISTINCT FROM $2 AND group_id IS NOT DISTINCT FROM $3
    RETURNING id
    """,
)
ADMIN_PIM_ROLE_HAS_REQUESTS = query(
    "admin_pim_role_has_requests",
    "SELECT EXISTS (SELECT 1 FROM pim_requests WHERE org_id = $1 AND role_id = $2)",
)

# OAuth clients (table of the OIDC migration); secret hashes are never selected.
ADMIN_CLIENTS_LIST = query(
    "admin_clients_list",
    """
    SELECT client_id, client_name, client_type, token_endpoint_auth_method,
           jwks IS NOT NULL AS has_jwks, redirect_uris, post_logout_redirect_uris, grant_types,
           scopes, resources, access_token_ttl_seconds, refresh_token_ttl_seconds, disabled,
           created_at, updated_at
    FROM oauth_clients WHERE org_id = $1 ORDER BY client_id LIMIT $2
    """,
)
ADMIN_CLIENT_LOCK = query(
    "admin_client_lock",
    """
    SELECT client_id, client_name, client_type, token_endpoint_auth_method,
           jwks IS NOT NULL AS has_jwks, redirect_uris, post_logout_redirect_uris, grant_types,
           scopes, resources, access_token_ttl_seconds, refresh_token_ttl_seconds, disabled,
           created_at, updated_at
    FROM oauth_clients WHERE org_id = $1 AND client_id = $2 FOR UPDATE
    """,
)
ADMIN_CLIENT_UPDATE = query(
    "admin_client_update",
    """
    UPDATE oauth_clients
    SET client_name = $3, redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6,
        scopes = $7, resources = $8, access_token_ttl_seconds = $9,
        refresh_token_ttl_seconds = $10, disabled = $11, updated_at = $12
    WHERE org_id = $1 AND client_id = $2
    """,
)
ADMIN_CLIENT_SET_SECRET = query(
    "admin_client_set_secret",
    """
    UPDATE oauth_clients SET secret_salt = $3, secret_hash = $4, updated_at = $5
    WHERE org_id = $1 AND client_id = $2
    """,
)
ADMIN_CLIENT_DELETE = query(
    "admin_client_delete", "DELETE FROM oauth_clients WHERE org_id = $1 AND client_id = $2"
)
ADMIN_BREAKGLASS_GET = query(
    "admin_breakglass_get",
    """
    SELECT id, name, role, default_ttl_seconds, max_ttl_seconds, disabled, failed_attempts,
           locked_until, last_activated_at, custodians_required, created_at, updated_at
    FROM breakglass_accounts WHERE org_id = $1 AND name = $2
    """,
)
