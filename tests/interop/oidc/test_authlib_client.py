"""Authlib's OAuth 2 client (requests flavour) against a real auth plane server.

Authlib builds the PKCE challenge, authenticates the client and parses the
token responses itself; the test only plays the user at the login form.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

from tests.interop.oidc.conftest import LiveServer
from tests.oidc.conftest import RP_CALLBACK, Tenant


def _issuer(server: LiveServer, tenant: Tenant) -> str:
    return f"{server.url}/o/{tenant.org}"


def _sign_in(session: OAuth2Session, authorization_url: str, tenant: Tenant, issuer: str) -> str:
    """Play the user: open the login page, submit it, return the redirect to the client."""
    # `withhold_token`: these are the user's browser requests, made before any token exists.
    page = session.get(authorization_url, allow_redirects=False, timeout=10, withhold_token=True)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields = {name: value.replace("&amp;", "&") for name, value in fields.items()}
    form = {
        **fields,
        "username": tenant.username,
        "password": tenant.password,
        "totp": tenant.totp(),
    }
    response = session.post(
        f"{issuer}/login", data=form, allow_redirects=False, timeout=10, withhold_token=True
    )
    assert response.status_code == 303, response.text
    location: str = response.headers["Location"]
    return location


def _code_flow(server: LiveServer, tenant: Tenant) -> tuple[OAuth2Session, dict[str, Any]]:
    issuer = _issuer(server, tenant)
    session = OAuth2Session(
        tenant.confidential_id,
        tenant.confidential_secret,
        scope="openid profile email offline_access",
        redirect_uri=RP_CALLBACK,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = session.create_authorization_url(
        f"{issuer}/authorize", code_verifier=verifier, nonce=secrets.token_urlsafe(8)
    )
    callback = _sign_in(session, url, tenant, issuer)
    token = session.fetch_token(
        f"{issuer}/token", authorization_response=callback, code_verifier=verifier, state=state
    )
    return session, dict(token)


async def test_code_flow_with_pkce(live_server: LiveServer, live_tenant: Tenant) -> None:
    session, token = await asyncio.to_thread(_code_flow, live_server, live_tenant)
    assert token["token_type"] == "Bearer"
    assert {"access_token", "id_token", "refresh_token"} <= set(token)
    userinfo = await asyncio.to_thread(
        session.get, f"{_issuer(live_server, live_tenant)}/userinfo", timeout=10
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["preferred_username"] == live_tenant.username


async def test_refresh_rotates(live_server: LiveServer, live_tenant: Tenant) -> None:
    session, first = await asyncio.to_thread(_code_flow, live_server, live_tenant)
    issuer = _issuer(live_server, live_tenant)
    second = await asyncio.to_thread(session.refresh_token, f"{issuer}/token")
    assert second["refresh_token"] != first["refresh_token"]
    reused = OAuth2Session(
        live_tenant.confidential_id, live_tenant.confidential_secret, token=first
    )
    from authlib.integrations.base_client.errors import OAuthError

    with pytest.raises(OAuthError) as failure:
        await asyncio.to_thread(reused.refresh_token, f"{issuer}/token")
    assert failure.value.error == "invalid_grant"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_with_secret(
    live_server: LiveServer, live_tenant: Tenant, method: str
) -> None:
    client_id, secret = (
        (live_tenant.service_id, live_tenant.service_secret)
        if method == "client_secret_basic"
        else (live_tenant.post_id, live_tenant.post_secret)
    )
    session = OAuth2Session(client_id, secret, scope="api.read", token_endpoint_auth_method=method)
    token = await asyncio.to_thread(
        session.fetch_token,
        f"{_issuer(live_server, live_tenant)}/token",
        grant_type="client_credentials",
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "api.read"


async def test_client_credentials_with_private_key_jwt(
    live_server: LiveServer, live_tenant: Tenant
) -> None:
    token_url = f"{_issuer(live_server, live_tenant)}/token"
    pem = live_tenant.jwt_key.export_to_pem(private_key=True, password=None)
    session = OAuth2Session(
        live_tenant.jwt_id,
        ECKey.import_key(pem),
        token_endpoint_auth_method=PrivateKeyJWT(token_url, alg="ES256"),
    )
    token = await asyncio.to_thread(session.fetch_token, token_url, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"


async def test_wrong_secret_rejected(live_server: LiveServer, live_tenant: Tenant) -> None:
    from authlib.integrations.base_client.errors import OAuthError

    session = OAuth2Session(live_tenant.service_id, "wrong-secret")
    with pytest.raises(OAuthError) as failure:
        await asyncio.to_thread(
            session.fetch_token,
            f"{_issuer(live_server, live_tenant)}/token",
            grant_type="client_credentials",
        )
    assert failure.value.error == "invalid_client"
