"""Demo OAuth clients for org `demo`, seeded by the first `appliance up`.

Both redirect to `http://127.0.0.1/callback`: a loopback IP literal, so a
local client may listen on any port (RFC 8252 section 7.3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.oidc.clients import create_client

DEMO_CONFIDENTIAL_CLIENT = "demo-web"
DEMO_PUBLIC_CLIENT = "demo-cli"
DEMO_REDIRECT_URIS = ["http://127.0.0.1/callback", "http://[::1]/callback"]
DEMO_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]


async def seed_oidc_clients(
    conn: asyncpg.Connection, org_id: UUID, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Create a confidential and a public client in the caller's org-scoped transaction.

    Returns the entry for `demo-credentials.json`, with the confidential
    client's secret (stored only hashed).
    """
    confidential = await create_client(
        conn,
        org_id,
        client_id=DEMO_CONFIDENTIAL_CLIENT,
        client_name="Demo web app",
        auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        redirect_uris=DEMO_REDIRECT_URIS,
        post_logout_redirect_uris=DEMO_REDIRECT_URIS,
        scopes=DEMO_SCOPES,
        actor=actor,
        now=now,
    )
    await create_client(
        conn,
        org_id,
        client_id=DEMO_PUBLIC_CLIENT,
        client_name="Demo command-line app",
        auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=DEMO_REDIRECT_URIS,
        post_logout_redirect_uris=DEMO_REDIRECT_URIS,
        scopes=DEMO_SCOPES,
        actor=actor,
        now=now,
    )
    return {
        "confidential_client": {
            "client_id": DEMO_CONFIDENTIAL_CLIENT,
            "client_secret": confidential.client_secret,
            "redirect_uris": DEMO_REDIRECT_URIS,
            "token_endpoint_auth_method": "client_secret_basic",
        },
        "public_client": {
            "client_id": DEMO_PUBLIC_CLIENT,
            "redirect_uris": DEMO_REDIRECT_URIS,
            "token_endpoint_auth_method": "none",
        },
    }
