"""The demo clients seeded by `appliance up` work at the token endpoint."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import asyncpg
from quart.typing import TestClientProtocol as Client

from appliance.db.tenancy import set_org
from appliance.oidc.demo import seed_oidc_clients
from tests.conftest import create_org


async def test_demo_clients_are_usable(client: Client, superuser: asyncpg.Connection) -> None:
    org_id, org = await create_org(superuser)
    async with superuser.transaction():
        await set_org(superuser, org_id)
        seeded = await seed_oidc_clients(superuser, org_id, actor="tests", now=datetime.now(UTC))
    confidential = seeded["confidential_client"]
    assert seeded["public_client"]["client_id"] == "demo-cli"
    assert "client_secret" not in seeded["public_client"]
    basic = base64.b64encode(
        f"{confidential['client_id']}:{confidential['client_secret']}".encode()
    ).decode()
    response = await client.post(
        f"/o/{org}/token",
        form={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    stored = await superuser.fetchval(
        "SELECT secret_hash FROM oauth_clients WHERE org_id = $1 AND client_id = 'demo-web'", org_id
    )
    assert confidential["client_secret"].encode() not in stored
