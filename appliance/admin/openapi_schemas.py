"""JSON Schemas (OpenAPI 3.1 components) of the admin API's bodies and responses.

Request schemas mirror the checks in the handlers (`appliance.admin.fields`):
the same patterns, lengths and ranges, and no unknown fields. A test fuzzes
the API against these schemas, so a drift between the two fails the suite.
"""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,62}$", "maxLength": 63}
ORG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$", "maxLength": 63}
TEXT_PATTERN = "^[^\\u0000]*$"
SECRET = {"type": "string", "minLength": 12, "maxLength": 1024, "pattern": TEXT_PATTERN}
TIME = {"type": "string", "format": "date-time"}
OPTIONAL_TIME = {"type": ["string", "null"], "format": "date-time"}
STRING = {"type": "string"}
OPTIONAL_STRING = {"type": ["string", "null"]}
TTL = {"type": "integer", "minimum": 60, "maximum": 3600}
ROLE_TEXT = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", "maxLength": 128}
EMAIL = {"type": "string", "pattern": "^[^@\\s]{1,64}@[^@\\s]{1,189}$", "maxLength": 254}
DISPLAY_NAME = {"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(
    required: dict[str, Any], optional: dict[str, Any] | None = None, *, closed: bool = False
) -> dict[str, Any]:
    """Build an object schema; `closed` forbids unknown properties (request bodies)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": STRING, "error_description": STRING}),
    "TotpEnrollment": obj({"provisioning_uri": STRING, "qr_png_base64": STRING}),
    "Session": obj(
        {
            "token": STRING,
            "token_type": {"const": "Bearer"},
            "expires_at": TIME,
            "expires_in": {"type": "integer"},
            "org": ORG,
            "username": NAME,
            "roles": array(STRING),
        }
    ),
    "Me": obj(
        {
            "username": NAME,
            "org": ORG,
            "roles": array(STRING),
            "permissions": array(STRING),
            "session_expires_at": TIME,
        }
    ),
    "Org": obj({"name": ORG, "display_name": STRING, "created_at": TIME}),
    "OrgDetail": obj(
        {
            "name": ORG,
            "display_name": STRING,
            "created_at": TIME,
            "your_roles": array(STRING),
        }
    ),
    "OrgList": obj({"orgs": array(ref("Org"))}),
    "OrgCreated": obj(
        {
            "org": ref("Org"),
            "admin": obj(
                {"username": NAME, "roles": array(STRING), "totp": ref("TotpEnrollment")},
                {"password": STRING},
            ),
        }
    ),
    "User": obj(
        {
            "username": NAME,
            "display_name": STRING,
            "email": STRING,
            "disabled": {"type": "boolean"},
            "locked": {"type": "boolean"},
            "locked_until": OPTIONAL_TIME,
            "failed_attempts": {"type": "integer"},
            "totp_planes": array(STRING),
            "created_at": TIME,
            "updated_at": TIME,
        }
    ),
    "UserEnvelope": obj({"user": ref("User")}, {"password": STRING}),
    "UserList": obj({"users": array(ref("User"))}),
    "UserWithTotp": obj({"user": ref("User"), "totp": ref("TotpEnrollment")}, {"password": STRING}),
    "Group": obj({"name": NAME, "created_at": TIME, "members": array(NAME)}),
    "GroupEnvelope": obj({"group": ref("Group")}),
    "GroupList": obj(
        {
            "groups": array(
                obj({"name": NAME, "created_at": TIME, "member_count": {"type": "integer"}})
            ),
        }
    ),
    "Role": obj({"name": STRING, "description": STRING, "permissions": array(STRING)}),
    "RoleList": obj({"roles": array(ref("Role"))}),
    "Bindings": obj(
        {
            "bindings": array(
                obj({"username": NAME, "role": STRING, "created_at": TIME, "created_by": STRING})
            ),
        }
    ),
    "Custodian": obj(
        {"position": {"type": "integer"}, "name": NAME, "enrolled_at": TIME, "enrolled_by": STRING}
    ),
    "CustodianEnrollment": obj(
        {"position": {"type": "integer"}, "name": NAME, "totp": ref("TotpEnrollment")}
    ),
    "Activation": obj(
        {
            "seq": {"type": "integer"},
            "occurred_at": TIME,
            "outcome": {"enum": ["success", "failure"]},
            "failure_reason": OPTIONAL_STRING,
            "incident": OPTIONAL_STRING,
            "expires_at": {"type": ["integer", "null"]},
        }
    ),
    "Account": obj(
        {
            "name": NAME,
            "role": STRING,
            "default_ttl_seconds": {"type": "integer"},
            "max_ttl_seconds": {"type": "integer"},
            "disabled": {"type": "boolean"},
            "custodians_required": {"type": "integer"},
            "failed_attempts": {"type": "integer"},
            "locked_until": OPTIONAL_TIME,
            "locked": {"type": "boolean"},
            "last_activated_at": OPTIONAL_TIME,
            "created_at": TIME,
            "updated_at": TIME,
            "custodians": array(ref("Custodian")),
        },
        {"recent_activations": array(ref("Activation"))},
    ),
    "AccountEnvelope": obj({"account": ref("Account")}),
    "AccountCreated": obj(
        {"account": ref("Account"), "custodians": array(ref("CustodianEnrollment"))}
    ),
    "CustodianEnrolled": obj({"account": ref("Account"), "custodian": ref("CustodianEnrollment")}),
    "AccountList": obj(
        {
            "accounts": array(
                obj(
                    {
                        "name": NAME,
                        "role": STRING,
                        "default_ttl_seconds": {"type": "integer"},
                        "max_ttl_seconds": {"type": "integer"},
                        "disabled": {"type": "boolean"},
                        "custodians_required": {"type": "integer"},
                        "failed_attempts": {"type": "integer"},
                        "locked_until": OPTIONAL_TIME,
                        "locked": {"type": "boolean"},
                        "last_activated_at": OPTIONAL_TIME,
                        "custodians": array(NAME),
                    }
                )
            ),
        }
    ),
    "Key": obj(
        {
            "plane": {"enum": ["auth", "admin", "pim", "breakglass"]},
            "kid": STRING,
            "alg": STRING,
            "status": {"enum": ["next", "active", "retired", "revoked"]},
            "created_at": TIME,
            "activated_at": OPTIONAL_TIME,
            "retired_at": OPTIONAL_TIME,
            "publish_until": OPTIONAL_TIME,
        }
    ),
    "KeyEnvelope": obj({"key": ref("Key")}),
    "KeyList": obj({"keys": array(ref("Key"))}),
    "RotationRequest": obj(
        {
            "id": {"type": "string", "format": "uuid"},
            "plane": STRING,
            "requested_by": STRING,
            "requested_at": TIME,
            "reason": STRING,
            "status": {"enum": ["pending", "completed", "failed"]},
            "completed_at": OPTIONAL_TIME,
            "new_kid": OPTIONAL_STRING,
            "failure_reason": OPTIONAL_STRING,
        },
        {"already_pending": {"type": "boolean"}},
    ),
    "RotationRequestEnvelope": obj({"rotation_request": ref("RotationRequest")}),
    "RotationRequestList": obj({"rotation_requests": array(ref("RotationRequest"))}),
    "AuditEvent": obj(
        {
            "org_id": {"type": "string", "format": "uuid"},
            "seq": {"type": "integer"},
            "event_id": {"type": "string", "format": "uuid"},
            "occurred_at": STRING,
            "plane": STRING,
            "event_type": STRING,
            "actor": STRING,
            "subject": STRING,
            "outcome": {"enum": ["success", "failure"]},
            "failure_reason": OPTIONAL_STRING,
            "source": OPTIONAL_STRING,
            "data": {"type": "object"},
            "prev_hash": STRING,
            "hash": STRING,
        }
    ),
    "AuditEvents": obj(
        {"events": array(ref("AuditEvent")), "next_after_seq": {"type": ["integer", "null"]}}
    ),
    "AuditVerification": obj(
        {
            "verified": {"type": "boolean"},
            "events": {"type": ["integer", "null"]},
            "head_hash": OPTIONAL_STRING,
            "broken_at_seq": {"type": ["integer", "null"]},
            "reason": OPTIONAL_STRING,
        }
    ),
}

POLICY = {
    "max_duration_seconds": {"type": "integer", "minimum": 60, "maximum": 604800},
    "approvals_required": {"type": "integer", "minimum": 0, "maximum": 10},
    "pending_ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 604800},
    "max_start_delay_seconds": {"type": "integer", "minimum": 0, "maximum": 2592000},
    "justification_required": {"type": "boolean"},
    "ticket_required": {"type": "boolean"},
    "totp_step_up": {"type": "boolean"},
    "allow_future_start": {"type": "boolean"},
}
PATTERN_FIELD = {"type": ["string", "null"], "maxLength": 200, "pattern": TEXT_PATTERN}
PRINCIPALS = obj({"users": array(NAME), "groups": array(NAME)})
SCHEMAS.update(
    {
        "PimPolicy": obj(
            {**POLICY, "justification_pattern": OPTIONAL_STRING, "ticket_pattern": OPTIONAL_STRING}
        ),
        "PimRole": obj(
            {
                "name": NAME,
                "description": STRING,
                "created_at": TIME,
                "updated_at": TIME,
                "policy": ref("PimPolicy"),
                "eligible": PRINCIPALS,
                "approvers": PRINCIPALS,
            }
        ),
        "PimRoleEnvelope": obj({"role": ref("PimRole")}),
        "PimRoleList": obj({"roles": array(ref("PimRole"))}),
    }
)
CLIENT_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$", "maxLength": 128}
URI_LIST = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 2048},
    "maxItems": 20,
    "uniqueItems": True,
}
CLIENT_LISTS = {
    "redirect_uris": URI_LIST,
    "post_logout_redirect_uris": URI_LIST,
    "grant_types": {
        "type": "array",
        "maxItems": 3,
        "uniqueItems": True,
        "items": {"enum": ["authorization_code", "refresh_token", "client_credentials"]},
    },
    "scopes": {
        "type": "array",
        "maxItems": 50,
        "uniqueItems": True,
        "items": {"type": "string", "pattern": "^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$"},
    },
    "resources": URI_LIST,
}
CLIENT_TTLS = {
    "access_token_ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 3600},
    "refresh_token_ttl_seconds": {"type": "integer", "minimum": 300, "maximum": 2592000},
}
SCHEMAS.update(
    {
        "Client": obj(
            {
                "client_id": CLIENT_ID,
                "client_name": STRING,
                "client_type": {"enum": ["confidential", "public"]},
                "token_endpoint_auth_method": STRING,
                "has_jwks": {"type": "boolean"},
                **{name: array(STRING) for name in CLIENT_LISTS},
                "access_token_ttl_seconds": {"type": "integer"},
                "refresh_token_ttl_seconds": {"type": "integer"},
                "disabled": {"type": "boolean"},
                "created_at": TIME,
                "updated_at": TIME,
            }
        ),
        "ClientEnvelope": obj({"client": ref("Client")}, {"client_secret": STRING}),
        "ClientList": obj({"clients": array(ref("Client"))}),
    }
)

# Request bodies.
BODIES: dict[str, Any] = {
    "Login": obj(
        {
            "username": NAME,
            "password": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1024,
                "pattern": TEXT_PATTERN,
            },
            "totp": {"type": "string", "pattern": "^[0-9]{6}$"},
        },
        closed=True,
    ),
    "OrgCreate": obj(
        {"name": ORG, "admin_username": NAME},
        {"display_name": DISPLAY_NAME, "admin_password": SECRET, "admin_email": EMAIL},
        closed=True,
    ),
    "UserCreate": obj(
        {"username": NAME},
        {"display_name": DISPLAY_NAME, "email": EMAIL, "password": SECRET},
        closed=True,
    ),
    "UserUpdate": obj(
        {},
        {"display_name": DISPLAY_NAME, "email": {"anyOf": [{"const": ""}, EMAIL]}},
        closed=True,
    ),
    "PasswordReset": obj({}, {"password": SECRET}, closed=True),
    "GroupCreate": obj({"name": NAME}, closed=True),
    "AccountCreate": obj(
        {
            "name": NAME,
            "role": ROLE_TEXT,
            "passphrase": SECRET,
            "custodians": {
                "type": "array",
                "items": NAME,
                "minItems": 1,
                "maxItems": 2,
                "uniqueItems": True,
            },
        },
        {"default_ttl_seconds": TTL, "max_ttl_seconds": TTL},
        closed=True,
    ),
    "AccountUpdate": obj(
        {},
        {
            "role": ROLE_TEXT,
            "default_ttl_seconds": TTL,
            "max_ttl_seconds": TTL,
            "custodians_required": {"type": "integer", "minimum": 1, "maximum": 2},
        },
        closed=True,
    ),
    "Passphrase": obj({"passphrase": SECRET}, closed=True),
    "CustodianEnroll": obj({"name": NAME}, closed=True),
    "KeyRetire": obj(
        {},
        {"publish_seconds": {"type": "integer", "minimum": 0, "maximum": 30 * 24 * 3600}},
        closed=True,
    ),
    "PimRoleCreate": obj(
        {"name": NAME},
        {
            "description": {"type": "string", "maxLength": 500, "pattern": TEXT_PATTERN},
            **POLICY,
            "justification_pattern": PATTERN_FIELD,
            "ticket_pattern": PATTERN_FIELD,
        },
        closed=True,
    ),
    "PimRoleUpdate": obj(
        {},
        {
            "description": {"type": "string", "maxLength": 500, "pattern": TEXT_PATTERN},
            **POLICY,
            "justification_pattern": PATTERN_FIELD,
            "ticket_pattern": PATTERN_FIELD,
        },
        closed=True,
    ),
    "ClientCreate": obj(
        {
            "client_id": CLIENT_ID,
            "token_endpoint_auth_method": {
                "enum": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
            },
            "grant_types": CLIENT_LISTS["grant_types"],
        },
        {
            "client_name": {"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN},
            **{k: v for k, v in CLIENT_LISTS.items() if k != "grant_types"},
            "jwks": {"type": "object"},
            **CLIENT_TTLS,
        },
        closed=True,
    ),
    "ClientUpdate": obj(
        {},
        {
            "client_name": {"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN},
            **CLIENT_LISTS,
            **CLIENT_TTLS,
            "disabled": {"type": "boolean"},
        },
        closed=True,
    ),
    "RotationRequestCreate": obj(
        {"plane": {"enum": ["auth", "pim", "breakglass"]}},
        {"reason": {"type": "string", "maxLength": 500, "pattern": TEXT_PATTERN}},
        closed=True,
    ),
}
# Break-glass alert targets; the same URL pattern and secret length as
# `appliance.admin.routes.breakglass_alerts`.
ALERT_URL = {
    "type": "string",
    "maxLength": 2048,
    "pattern": "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$",
}
PAYLOAD_FORMAT = {"enum": ["json", "slack"]}
SCHEMAS.update(
    {
        "AlertDelivery": obj(
            {
                "event_type": STRING,
                "account": STRING,
                "status": {"enum": ["pending", "delivered", "dead"]},
                "attempts": {"type": "integer"},
                "last_http_status": {"type": ["integer", "null"]},
                "created_at": TIME,
                "delivered_at": OPTIONAL_TIME,
            }
        ),
        "AlertTarget": obj(
            {
                "id": {"type": "string", "format": "uuid"},
                "url": STRING,
                "payload_format": PAYLOAD_FORMAT,
                "enabled": {"type": "boolean"},
                "created_at": TIME,
            },
            {"recent_alerts": array(ref("AlertDelivery"))},
        ),
        "AlertTargetEnvelope": obj({"alert_target": ref("AlertTarget")}),
        "AlertTargetCreated": obj({"alert_target": ref("AlertTarget")}, {"secret": STRING}),
        "AlertTargetList": obj({"alert_targets": array(ref("AlertTarget"))}),
    }
)
BODIES.update(
    {
        "AlertTargetCreate": obj(
            {"url": ALERT_URL},
            {
                "secret": {**SECRET, "minLength": 16},
                "payload_format": PAYLOAD_FORMAT,
            },
            closed=True,
        ),
        "AlertTargetUpdate": obj(
            {},
            {"url": ALERT_URL, "payload_format": PAYLOAD_FORMAT, "enabled": {"type": "boolean"}},
            closed=True,
        ),
    }
)
