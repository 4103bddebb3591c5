"""The authorization endpoint: PKCE required, exact redirect URIs, errors sent only where safe."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import (
    LOOPBACK_CALLBACK,
    Tenant,
    authorize_query,
    location_params,
    pkce,
    source,
)


async def _authorize(client: Client, tenant: Tenant, query: dict[str, str] | str) -> Any:
    encoded = query if isinstance(query, str) else urlencode(query)
    return await client.get(f"/o/{tenant.org}/authorize?{encoded}", scope_base=source())


async def _redirected_error(
    client: Client, tenant: Tenant, **overrides: str | None
) -> dict[str, str]:
    _, challenge = pkce()
    query = authorize_query(tenant, challenge, **overrides)
    response = await _authorize(client, tenant, query)
    assert response.status_code == 302, await response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(query["redirect_uri"] + "?")
    params = location_params(location)
    assert params["iss"] == tenant.issuer
    assert params.get("state") == query.get("state")
    assert "code" not in params
    return params


async def test_login_page_served_with_csrf_and_csp(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    response = await _authorize(client, tenant, authorize_query(tenant, challenge))
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert 'name="csrf_token"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "style-src 'nonce-" in csp
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


async def test_missing_pkce_redirects_invalid_request(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(
        client, tenant, code_challenge=None, code_challenge_method=None
    )
    assert params["error"] == "invalid_request"


async def test_plain_pkce_redirects_invalid_request(client: Client, tenant: Tenant) -> None:
    verifier, _ = pkce()
    params = await _redirected_error(
        client, tenant, code_challenge=verifier[:43], code_challenge_method="plain"
    )
    assert params["error"] == "invalid_request"


async def test_pkce_without_method_redirects_invalid_request(
    client: Client, tenant: Tenant
) -> None:
    params = await _redirected_error(client, tenant, code_challenge_method=None)
    assert params["error"] == "invalid_request"


async def test_public_client_needs_pkce(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(
        client,
        tenant,
        client_id=tenant.public_id,
        redirect_uri=LOOPBACK_CALLBACK,
        code_challenge=None,
        code_challenge_method=None,
    )
    assert params["error"] == "invalid_request"


async def test_token_response_type_unsupported(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(client, tenant, response_type="token")
    assert params["error"] == "unsupported_response_type"


async def test_unregistered_scope_is_invalid_scope(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(client, tenant, scope="openid admin")
    assert params["error"] == "invalid_scope"


async def test_unregistered_resource_is_invalid_target(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(client, tenant, resource="https://other.example/")
    assert params["error"] == "invalid_target"


async def test_resource_with_fragment_is_invalid_target(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(client, tenant, resource="https://api.example/#x")
    assert params["error"] == "invalid_target"


async def test_request_object_not_supported(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(client, tenant, request="eyJhbGciOiJub25lIn0.e30.")
    assert params["error"] == "request_not_supported"


async def test_prompt_none_without_session(client: Client, tenant: Tenant) -> None:
    params = await _redirected_error(client, tenant, prompt="none")
    assert params["error"] == "login_required"


async def test_client_without_code_grant_unauthorized(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    query = authorize_query(tenant, challenge, client_id=tenant.service_id)
    response = await _authorize(client, tenant, query)
    # The service client has no redirect URI, so nothing can be redirected.
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://rp.example.evil.com/callback",
        "https://evil.com/callback",
        "https://rp.example@evil.com/callback",
        "https://evil.com@rp.example/callback",
        "https://RP.EXAMPLE/callback",
        "https://rp.example/Callback",
        "https://rp.example/callback/../evil",
        "https://rp.example/evil/../callback",
        "https://rp.example/callback#fragment",
        "https://rp.example/callback?extra=1",
        "https://rp.example/callback/",
        "http://rp.example/callback",
        "http://127.0.0.1:5000/other",
        "http://localhost:5000/callback",
        "javascript:alert(1)",
    ],
)
async def test_redirect_uri_tricks_get_error_page(
    client: Client, tenant: Tenant, redirect_uri: str
) -> None:
    _, challenge = pkce()
    response = await _authorize(
        client, tenant, authorize_query(tenant, challenge, redirect_uri=redirect_uri)
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]


async def test_missing_redirect_uri_gets_error_page(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    response = await _authorize(
        client, tenant, authorize_query(tenant, challenge, redirect_uri=None)
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


async def test_unknown_client_gets_error_page(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    response = await _authorize(
        client, tenant, authorize_query(tenant, challenge, client_id="nobody")
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


async def test_repeated_parameter_gets_error_page(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    query = (
        urlencode(authorize_query(tenant, challenge)) + "&redirect_uri=https%3A%2F%2Fevil.com%2F"
    )
    response = await _authorize(client, tenant, query)
    assert response.status_code == 400
    assert "Location" not in response.headers


async def test_oversized_query_gets_error_page(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    response = await _authorize(
        client, tenant, authorize_query(tenant, challenge, state="s" * 9000)
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("raw", ["%ff%fe=1", "client_id=%ZZ", "a" * 100 + "&" * 40, "=&=&="])
async def test_garbage_query_never_500(client: Client, tenant: Tenant, raw: str) -> None:
    response = await _authorize(client, tenant, raw)
    assert response.status_code == 400


async def test_unknown_org_is_404(client: Client, tenant: Tenant) -> None:
    response = await client.get("/o/no-such-org/authorize?client_id=x")
    assert response.status_code == 404
