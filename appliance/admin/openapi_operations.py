"""The operations of the admin API, as OpenAPI 3.1 operation objects.

Each operation names the permission it needs (`x-permission`), which the
role-matrix test reads. A test checks that every route of the API blueprint
is documented here and every documented path is routed.
"""

from __future__ import annotations

from typing import Any

from appliance.admin.openapi_schemas import CLIENT_ID, NAME, ORG, ref

V1 = "/admin/v1"
O = f"{V1}/orgs/{{org}}"  # noqa: E741

ERRORS = {
    "400": "invalid request: a field or query parameter is malformed (the description names it)",
    "401": "no valid session: log in and send Authorization: Bearer <token>",
    "403": "your roles in this org do not grant the permission",
    "404": "not found, or the org is not the org of your session",
    "409": "conflicts with the current state",
    "413": "request body too large",
    "415": "request body is not application/json",
    "429": "too many failed logins from this address: retry after the Retry-After seconds",
}

PATH_PARAMS: dict[str, dict[str, Any]] = {
    "org": ORG,
    "username": NAME,
    "name": NAME,
    "kid": {"type": "string", "maxLength": 64},
    "role": {"type": "string", "maxLength": 64},
    "relation": {"enum": ["eligible", "approvers"]},
    "kind": {"enum": ["users", "groups"]},
    "principal": NAME,
    "client_id": CLIENT_ID,
    "target_id": {"type": "string", "format": "uuid"},
}


def _parameters(path: str, query: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in PATH_PARAMS.items()
        if f"{{{name}}}" in path
    ]
    for name, schema in (query or {}).items():
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
    return params


def operation(
    method: str,
    path: str,
    operation_id: str,
    summary: str,
    *,
    permission: str | None,
    ok: tuple[int, str | None],
    ok_also: tuple[int, ...] = (),
    body: str | None = None,
    body_required: bool = True,
    query: dict[str, dict[str, Any]] | None = None,
    errors: tuple[str, ...] = ("400", "401", "403", "404"),
    public: bool = False,
    media_type: str = "application/json",
) -> tuple[str, str, dict[str, Any]]:
    status, schema_name = ok
    responses: dict[str, Any] = {}
    if schema_name is None:
        responses[str(status)] = {"description": "done"}
    else:
        content_schema: dict[str, Any] = (
            {"type": "string"} if media_type != "application/json" else ref(schema_name)
        )
        for code in (status, *ok_also):
            responses[str(code)] = {
                "description": "success",
                "content": {media_type: {"schema": content_schema}},
            }
    codes = set(errors)
    if body is not None:
        codes |= {"400", "413", "415"}
    for error_code in sorted(codes):
        responses[error_code] = {
            "description": ERRORS[error_code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    spec: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": _parameters(path, query),
        "responses": responses,
    }
    if permission is not None:
        spec["x-permission"] = permission
    if public:
        spec["security"] = []
    if body is not None:
        spec["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return method, path, spec


Operation = tuple[str, str, dict[str, Any]]
LIMIT: dict[str, dict[str, Any]] = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}}
AUDIT_QUERY: dict[str, dict[str, Any]] = {
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
    "actor": {"type": "string", "minLength": 1, "maxLength": 200},
    "event_type": {"type": "string", "minLength": 1, "maxLength": 100},
    "subject": {"type": "string", "minLength": 1, "maxLength": 200},
}
SEARCH_QUERY: dict[str, dict[str, Any]] = {
    **AUDIT_QUERY,
    "after_seq": {"type": "integer", "minimum": 0},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
}
W = ("400", "401", "403", "404", "409")
U = f"{O}/users/{{username}}"
G = f"{O}/groups/{{name}}"
B = f"{O}/breakglass/accounts"
A = f"{O}/breakglass/alert-targets"
R = f"{O}/pim/roles"
C = f"{O}/clients"

# fmt: off
OPERATIONS: list[Operation] = [
    # Session.
    operation("post", f"{O}/login", "login", "Log in with password and TOTP; returns a token",
              permission=None, ok=(200, "Session"), body="Login", public=True,
              errors=("400", "401", "404", "429")),
    operation("post", f"{O}/logout", "logout", "Revoke the current session",
              permission=None, ok=(204, None), errors=("401", "404")),
    operation("get", f"{O}/me", "me", "The caller, its roles and permissions in the org",
              permission=None, ok=(200, "Me"), errors=("401", "404")),
    # Orgs.
    operation("get", f"{V1}/orgs", "listOrgs", "List orgs (platform admins of org system)",
              permission="orgs.manage", ok=(200, "OrgList"), query=LIMIT),
    operation("post", f"{V1}/orgs", "createOrg", "Create an org and its first org-admin",
              permission="orgs.manage", ok=(201, "OrgCreated"), body="OrgCreate", errors=W),
    operation("get", O, "getOrg", "The org of the session", permission=None,
              ok=(200, "OrgDetail"), errors=("401", "404")),
    # Users.
    operation("get", f"{O}/users", "listUsers", "List users", permission="users.read",
              ok=(200, "UserList"), query=LIMIT),
    operation("post", f"{O}/users", "createUser",
              "Create a user with a TOTP seed for every login plane", permission="users.write",
              ok=(201, "UserWithTotp"), body="UserCreate", errors=W),
    operation("get", U, "getUser", "Read a user", permission="users.read",
              ok=(200, "UserEnvelope")),
    operation("patch", U, "updateUser", "Change display name or email",
              permission="users.write", ok=(200, "UserEnvelope"), body="UserUpdate", errors=W),
    operation("post", f"{U}/disable", "disableUser", "Disable a user",
              permission="users.write", ok=(200, "UserEnvelope"), errors=W),
    operation("post", f"{U}/enable", "enableUser", "Enable a user",
              permission="users.write", ok=(200, "UserEnvelope"), errors=W),
    operation("post", f"{U}/unlock", "unlockUser", "Clear a lockout",
              permission="users.write", ok=(200, "UserEnvelope"), errors=W),
    operation("post", f"{U}/reset-password", "resetPassword",
              "Set a password (generated and shown once when omitted)",
              permission="users.write", ok=(200, "UserEnvelope"), body="PasswordReset", errors=W),
    operation("post", f"{U}/reset-totp", "resetTotp",
              "Replace the TOTP seed on every login plane", permission="users.write",
              ok=(200, "UserWithTotp"), errors=W),
    # Groups.
    operation("get", f"{O}/groups", "listGroups", "List groups", permission="groups.read",
              ok=(200, "GroupList"), query=LIMIT),
    operation("post", f"{O}/groups", "createGroup", "Create a group", permission="groups.write",
              ok=(201, "GroupEnvelope"), body="GroupCreate", errors=W),
    operation("get", G, "getGroup", "Read a group and its members",
              permission="groups.read", ok=(200, "GroupEnvelope")),
    operation("delete", G, "deleteGroup", "Delete a group",
              permission="groups.write", ok=(204, None), errors=W),
    operation("put", f"{G}/members/{{username}}", "addGroupMember", "Add a member",
              permission="groups.write", ok=(200, "GroupEnvelope"), errors=W),
    operation("delete", f"{G}/members/{{username}}", "removeGroupMember", "Remove a member",
              permission="groups.write", ok=(200, "GroupEnvelope"), errors=W),
    # Roles of the admin API.
    operation("get", f"{O}/roles", "listRoles", "Roles of the admin API and their permissions",
              permission="rbac.read", ok=(200, "RoleList")),
    operation("get", f"{O}/role-bindings", "listRoleBindings", "List role bindings",
              permission="rbac.read", ok=(200, "Bindings")),
    operation("put", f"{O}/role-bindings/{{username}}/{{role}}", "addRoleBinding",
              "Bind a role to a user (201 when new, 200 when it existed)",
              permission="rbac.write", ok=(201, "Bindings"), ok_also=(200,), errors=W),
    operation("delete", f"{O}/role-bindings/{{username}}/{{role}}", "removeRoleBinding",
              "Remove a binding; the last org admin cannot be removed",
              permission="rbac.write", ok=(204, None), errors=W),
    # Break-glass accounts.
    operation("get", B, "listBreakglassAccounts", "List break-glass accounts",
              permission="breakglass.read", ok=(200, "AccountList"), query=LIMIT),
    operation("post", B, "createBreakglassAccount",
              "Create an account with one or two custodians, each with its own TOTP seed",
              permission="breakglass.write", ok=(201, "AccountCreated"), body="AccountCreate",
              errors=W),
    operation("get", f"{B}/{{name}}", "getBreakglassAccount",
              "Read an account with its recent activations", permission="breakglass.read",
              ok=(200, "AccountEnvelope")),
    operation("patch", f"{B}/{{name}}", "updateBreakglassAccount",
              "Change role, lifetimes or required custodians", permission="breakglass.write",
              ok=(200, "AccountEnvelope"), body="AccountUpdate", errors=W),
    operation("put", f"{B}/{{name}}/passphrase", "setBreakglassPassphrase", "Set the passphrase",
              permission="breakglass.write", ok=(200, "AccountEnvelope"), body="Passphrase",
              errors=W),
    operation("post", f"{B}/{{name}}/custodians", "enrollCustodian",
              "Enroll a custodian, or give a named one a new TOTP seed",
              permission="breakglass.write", ok=(201, "CustodianEnrolled"),
              body="CustodianEnroll", errors=W),
    operation("post", f"{B}/{{name}}/disable", "disableBreakglassAccount", "Disable an account",
              permission="breakglass.write", ok=(200, "AccountEnvelope"), errors=W),
    operation("post", f"{B}/{{name}}/enable", "enableBreakglassAccount", "Enable an account",
              permission="breakglass.write", ok=(200, "AccountEnvelope"), errors=W),
    operation("post", f"{B}/{{name}}/unlock", "unlockBreakglassAccount", "Clear a lockout",
              permission="breakglass.write", ok=(200, "AccountEnvelope"), errors=W),
    # Break-glass alert targets (webhooks the break-glass plane signs and calls).
    operation("get", A, "listBreakglassAlertTargets", "List alert targets (never their secrets)",
              permission="breakglass.read", ok=(200, "AlertTargetList"), query=LIMIT),
    operation("post", A, "createBreakglassAlertTarget",
              "Add an alert target; a generated secret is returned once",
              permission="breakglass.write", ok=(201, "AlertTargetCreated"),
              body="AlertTargetCreate", errors=W),
    operation("get", f"{A}/{{target_id}}", "getBreakglassAlertTarget",
              "Read an alert target with its recent alerts", permission="breakglass.read",
              ok=(200, "AlertTargetEnvelope")),
    operation("patch", f"{A}/{{target_id}}", "updateBreakglassAlertTarget",
              "Enable or disable a target, or change its URL or payload format",
              permission="breakglass.write", ok=(200, "AlertTargetEnvelope"),
              body="AlertTargetUpdate", errors=W),
    operation("delete", f"{A}/{{target_id}}", "deleteBreakglassAlertTarget",
              "Remove an alert target and its alert history", permission="breakglass.write",
              ok=(204, None), errors=W),
    # PIM roles and policies.
    operation("get", R, "listPimRoles", "List PIM roles with policies",
              permission="pim.read", ok=(200, "PimRoleList"), query=LIMIT),
    operation("post", R, "createPimRole", "Create a PIM role and its policy",
              permission="pim.write", ok=(201, "PimRoleEnvelope"), body="PimRoleCreate",
              errors=W),
    operation("get", f"{R}/{{name}}", "getPimRole",
              "Read a PIM role, its policy, eligible users and groups and approvers",
              permission="pim.read", ok=(200, "PimRoleEnvelope")),
    operation("patch", f"{R}/{{name}}", "updatePimRole",
              "Change a PIM role's description or policy", permission="pim.write",
              ok=(200, "PimRoleEnvelope"), body="PimRoleUpdate", errors=W),
    operation("delete", f"{R}/{{name}}", "deletePimRole", "Delete a PIM role that has no requests",
              permission="pim.write", ok=(204, None), errors=W),
    operation("put", f"{R}/{{name}}/{{relation}}/{{kind}}/{{principal}}", "addPimPrincipal",
              "Make a user or group eligible for, or an approver of, a role",
              permission="pim.write", ok=(200, "PimRoleEnvelope"), errors=W),
    operation("delete", f"{R}/{{name}}/{{relation}}/{{kind}}/{{principal}}", "removePimPrincipal",
              "Remove an eligible or approving user or group",
              permission="pim.write", ok=(200, "PimRoleEnvelope"), errors=W),
    # OAuth clients.
    operation("get", C, "listClients", "List OAuth clients",
              permission="clients.read", ok=(200, "ClientList"), query=LIMIT),
    operation("post", C, "registerClient", "Register an OAuth client; a secret is shown once",
              permission="clients.write", ok=(201, "ClientEnvelope"), body="ClientCreate",
              errors=W),
    operation("get", f"{C}/{{client_id}}", "getClient", "Read an OAuth client",
              permission="clients.read", ok=(200, "ClientEnvelope")),
    operation("patch", f"{C}/{{client_id}}", "updateClient",
              "Change redirect URIs, grant types, scopes, lifetimes or the disabled flag",
              permission="clients.write", ok=(200, "ClientEnvelope"), body="ClientUpdate",
              errors=W),
    operation("post", f"{C}/{{client_id}}/rotate-secret", "rotateClientSecret",
              "Replace the client secret; the new one is shown once",
              permission="clients.write", ok=(200, "ClientEnvelope"), errors=W),
    operation("delete", f"{C}/{{client_id}}", "deleteClient",
              "Delete a client with its grants and tokens", permission="clients.write",
              ok=(204, None), errors=W),
    # Keys.
    operation("get", f"{O}/keys", "listKeys", "List signing keys (public fields only)",
              permission="keys.read", ok=(200, "KeyList"),
              query={"plane": {"enum": ["auth", "admin", "pim", "breakglass"]}}),
    operation("post", f"{O}/keys/{{kid}}/retire", "retireKey",
              "Retire a key; it stays published for publish_seconds", permission="keys.write",
              ok=(200, "KeyEnvelope"), body="KeyRetire", body_required=False, errors=W),
    operation("post", f"{O}/keys/{{kid}}/revoke", "revokeKey",
              "Revoke a key and withdraw it from the JWKS", permission="keys.write",
              ok=(200, "KeyEnvelope"), errors=W),
    operation("get", f"{O}/keys/rotation-requests", "listRotationRequests",
              "List key rotation requests", permission="keys.read",
              ok=(200, "RotationRequestList"), query=LIMIT),
    operation("post", f"{O}/keys/rotation-requests", "requestRotation",
              "Ask the owning plane to rotate its key now", permission="keys.write",
              ok=(202, "RotationRequestEnvelope"), body="RotationRequestCreate", errors=W),
    # Audit.
    operation("get", f"{O}/audit/events", "searchAudit",
              "Search the audit trail by time, actor, event type and subject",
              permission="audit.read", ok=(200, "AuditEvents"), query=SEARCH_QUERY),
    operation("get", f"{O}/audit/verify", "verifyAudit", "Verify the org's audit hash chain",
              permission="audit.read", ok=(200, "AuditVerification")),
    operation("get", f"{O}/audit/export", "exportAudit", "Export the audit trail as JSON lines",
              permission="audit.read", ok=(200, "AuditEvent"), query=AUDIT_QUERY,
              media_type="application/x-ndjson"),
]
# fmt: on
