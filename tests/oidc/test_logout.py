"""RP-initiated logout: registered redirect only, CSRF-protected confirmation, session ended."""

from __future__ import annotations

from urllib.parse import urlencode

from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import (
    RP_LOGOUT,
    Tenant,
    authorize_query,
    hidden_fields,
    pkce,
    source,
    tokens_for_user,
)


async def _session_required(client: Client, tenant: Tenant) -> int:
    """Status of a prompt=none authorization: 302 with a code when signed in."""
    _, challenge = pkce()
    query = authorize_query(tenant, challenge, prompt="none")
    response = await client.get(
        f"/o/{tenant.org}/authorize?{urlencode(query)}", scope_base=source()
    )
    return (
        0
        if "error=login_required" in response.headers.get("Location", "")
        else response.status_code
    )


async def test_logout_with_hint_redirects_and_ends_session(client: Client, tenant: Tenant) -> None:
    tokens = await tokens_for_user(client, tenant)
    assert await _session_required(client, tenant) == 302
    query = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": RP_LOGOUT,
        "state": "s1",
    }
    response = await client.get(f"/o/{tenant.org}/logout?{urlencode(query)}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{RP_LOGOUT}?state=s1"
    assert await _session_required(client, tenant) == 0


async def test_logout_rejects_unregistered_redirect(client: Client, tenant: Tenant) -> None:
    tokens = await tokens_for_user(client, tenant)
    query = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example/",
    }
    response = await client.get(f"/o/{tenant.org}/logout?{urlencode(query)}")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert await _session_required(client, tenant) == 302


async def test_logout_rejects_forged_hint(client: Client, tenant: Tenant) -> None:
    from tests.oidc.forge import unsigned

    hint = unsigned(
        {"iss": tenant.issuer, "aud": tenant.confidential_id, "sub": str(tenant.user_id)}
    )
    response = await client.get(f"/o/{tenant.org}/logout?{urlencode({'id_token_hint': hint})}")
    assert response.status_code == 400


async def test_logout_without_hint_asks_confirmation(client: Client, tenant: Tenant) -> None:
    await tokens_for_user(client, tenant)
    page = await client.get(f"/o/{tenant.org}/logout")
    assert page.status_code == 200
    assert await _session_required(client, tenant) == 302
    fields = hidden_fields(await page.get_data(as_text=True))
    forged = await client.post(f"/o/{tenant.org}/logout", form={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    confirmed = await client.post(f"/o/{tenant.org}/logout", form=fields)
    assert confirmed.status_code == 200
    assert await _session_required(client, tenant) == 0
