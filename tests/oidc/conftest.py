"""Fixtures for the auth plane: an org with a user and registered clients, and a running app."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from uuid import UUID

import asyncpg
import pytest
from jwcrypto import jwk
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.db.tenancy import set_org
from appliance.identity.totp import STEP_SECONDS, code_at, new_secret
from appliance.identity.users import create_user
from appliance.keys.sealing import sealing_private_key
from appliance.oidc.clients import create_client
from appliance.oidc.rfc7636 import s256
from appliance.settings import Plane
from tests.conftest import Database, create_org

PUBLIC_URL = "http://localhost"
RP_CALLBACK = "https://rp.example/callback"
LOOPBACK_CALLBACK = "http://127.0.0.1/callback"
RP_LOGOUT = "https://rp.example/signed-out"
API = "https://api.example/"
SCOPES = ["openid", "profile", "email", "groups", "offline_access", "api.read", "api.write"]


@dataclass
class Tenant:
    org_id: UUID
    org: str
    clock: FrozenClock
    username: str
    password: str
    totp_secret: str
    user_id: UUID
    confidential_id: str
    confidential_secret: str
    post_id: str
    post_secret: str
    public_id: str
    jwt_id: str
    jwt_key: jwk.JWK
    service_id: str
    service_secret: str
    used_steps: set[int] = field(default_factory=set)

    @property
    def issuer(self) -> str:
        return f"{PUBLIC_URL}/o/{self.org}"

    def totp(self) -> str:
        """A TOTP code of a step not used yet, moving the clock on when the current one was used."""
        step = int(self.clock.now.timestamp() // STEP_SECONDS)
        if step in self.used_steps:
            self.clock.advance(STEP_SECONDS)
            step += 1
        self.used_steps.add(step)
        return code_at(self.totp_secret, step)

    def basic(self, client_id: str | None = None, secret: str | None = None) -> dict[str, str]:
        raw = f"{client_id or self.confidential_id}:{secret or self.confidential_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def source() -> dict[str, Any]:
    """A scope with a fresh client address, so login rate limits do not leak between tests."""
    return {"client": (f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}", 40000)}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


@pytest.fixture
def clock() -> FrozenClock:
    now = datetime.now(UTC).timestamp()
    return FrozenClock(datetime.fromtimestamp(now - now % STEP_SECONDS, UTC))


@pytest.fixture
async def app(database: Database, clock: FrozenClock) -> AsyncIterator[Quart]:
    application = create_app(database.settings(Plane.AUTH, public_url=PUBLIC_URL), clock=clock)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


async def make_tenant(
    database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> Tenant:
    org_id, org = await create_org(superuser)
    password = secrets.token_urlsafe(12)
    totp_secret = new_secret()
    seal = bytes(sealing_private_key(database.master_secrets[Plane.AUTH], "auth").public_key)
    jwt_key = jwk.JWK.generate(kty="EC", crv="P-256", kid="rp-key-1")
    now = clock.now
    async with superuser.transaction():
        await set_org(superuser, org_id)
        user_id = await create_user(
            superuser,
            org_id,
            username="alice",
            password=password,
            totp_secret=totp_secret,
            seal_public_keys={"auth": seal},
            actor="tests",
            now=now,
            display_name="Alice Example",
            email="alice@example.com",
        )
        common: dict[str, Any] = {
            "actor": "tests",
            "now": now,
            "scopes": SCOPES,
            "resources": [API],
        }
        confidential = await create_client(
            superuser,
            org_id,
            client_id="rp-web",
            client_name="Web RP",
            auth_method="client_secret_basic",
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            redirect_uris=[RP_CALLBACK, LOOPBACK_CALLBACK],
            post_logout_redirect_uris=[RP_LOGOUT],
            **common,
        )
        post = await create_client(
            superuser,
            org_id,
            client_id="rp-post",
            auth_method="client_secret_post",
            grant_types=["authorization_code", "client_credentials"],
            redirect_uris=[RP_CALLBACK],
            **common,
        )
        await create_client(
            superuser,
            org_id,
            client_id="rp-native",
            auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[LOOPBACK_CALLBACK, "http://[::1]/callback"],
            **common,
        )
        await create_client(
            superuser,
            org_id,
            client_id="rp-jwt",
            auth_method="private_key_jwt",
            grant_types=["client_credentials", "authorization_code"],
            redirect_uris=[RP_CALLBACK],
            jwks={"keys": [jwt_key.export_public(as_dict=True)]},
            **common,
        )
        service = await create_client(
            superuser,
            org_id,
            client_id="svc",
            auth_method="client_secret_basic",
            grant_types=["client_credentials"],
            **common,
        )
    assert confidential.client_secret is not None
    assert post.client_secret is not None
    assert service.client_secret is not None
    return Tenant(
        org_id=org_id,
        org=org,
        clock=clock,
        username="alice",
        password=password,
        totp_secret=totp_secret,
        user_id=user_id,
        confidential_id="rp-web",
        confidential_secret=confidential.client_secret,
        post_id="rp-post",
        post_secret=post.client_secret,
        public_id="rp-native",
        jwt_id="rp-jwt",
        jwt_key=jwt_key,
        service_id="svc",
        service_secret=service.client_secret,
    )


@pytest.fixture
async def tenant(database: Database, superuser: asyncpg.Connection, clock: FrozenClock) -> Tenant:
    return await make_tenant(database, superuser, clock)


def authorize_query(tenant: Tenant, challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": tenant.confidential_id,
        "redirect_uri": RP_CALLBACK,
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def hidden_fields(html: str) -> dict[str, str]:
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    return {
        name: value.replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")
        for name, value in fields
    }


def location_params(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


async def login(
    client: Client,
    tenant: Tenant,
    query: dict[str, str],
    *,
    scope: dict[str, Any] | None = None,
    password: str | None = None,
    totp: str | None = None,
) -> Any:
    """Open the authorization endpoint, submit the login form, and return the login response."""
    scope = scope or source()
    page = await client.get(f"/o/{tenant.org}/authorize?{urlencode(query)}", scope_base=scope)
    assert page.status_code == 200, await page.get_data(as_text=True)
    fields = hidden_fields(await page.get_data(as_text=True))
    form = {
        **fields,
        "username": tenant.username,
        "password": password if password is not None else tenant.password,
        "totp": totp if totp is not None else tenant.totp(),
    }
    return await client.post(f"/o/{tenant.org}/login", form=form, scope_base=scope)


async def authorization_code(
    client: Client, tenant: Tenant, **overrides: str | None
) -> tuple[str, str, dict[str, str]]:
    """Run the browser part of the code flow; return (code, verifier, authorize query)."""
    verifier, challenge = pkce()
    query = authorize_query(tenant, challenge, **overrides)
    response = await login(client, tenant, query)
    assert response.status_code == 303, await response.get_data(as_text=True)
    params = location_params(response.headers["Location"])
    assert params["state"] == query["state"]
    return params["code"], verifier, query


async def exchange(
    client: Client,
    tenant: Tenant,
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str = RP_CALLBACK,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    return await client.post(
        f"/o/{tenant.org}/token",
        form=form,
        headers=headers if headers is not None else tenant.basic(),
    )


async def tokens_for_user(
    client: Client, tenant: Tenant, **overrides: str | None
) -> dict[str, Any]:
    code, verifier, _ = await authorization_code(client, tenant, **overrides)
    response = await exchange(client, tenant, code, verifier)
    assert response.status_code == 200, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body
