"""Authorization server metadata (RFC 8414) and OpenID Connect Discovery 1.0.

One document serves both: it is published at
`/o/{org}/.well-known/openid-configuration` (OpenID Connect Discovery),
`/.well-known/openid-configuration/o/{org}` and
`/.well-known/oauth-authorization-server/o/{org}` (RFC 8414 section 3,
which inserts the well-known segment between host and issuer path).
"""

from __future__ import annotations

from typing import Any

from appliance.oidc.jose import ASYMMETRIC_ALGS

SCOPES_SUPPORTED = ["openid", "profile", "email", "groups", "offline_access"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks.json",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "end_session_endpoint": f"{issuer}/logout",
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "sid",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "groups",
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": True,
        "authorization_response_iss_parameter_supported": True,
        "access_token_signing_alg_values_supported": ["ES256"],
    }
