"""The login page: CSRF, password + TOTP, lockout and per-address rate limit."""

from __future__ import annotations

from urllib.parse import urlencode

import asyncpg
from quart.typing import TestClientProtocol as Client

from appliance.identity.source_limit import MAX_FAILURES as SOURCE_FAILURE_LIMIT
from tests.oidc.conftest import Tenant, authorize_query, hidden_fields, login, pkce, source


async def _audit_reasons(superuser: asyncpg.Connection, tenant: Tenant) -> list[str | None]:
    rows = await superuser.fetch(
        "SELECT failure_reason FROM audit_events "
        "WHERE org_id = $1 AND event_type = 'user.login_failed' ORDER BY seq",
        tenant.org_id,
    )
    return [row["failure_reason"] for row in rows]


async def test_login_sets_session_cookie(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    response = await login(client, tenant, authorize_query(tenant, challenge))
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "appliance_auth_session=" in cookie
    assert "HttpOnly" in cookie
    assert f"Path=/o/{tenant.org}/" in cookie


async def test_login_without_csrf_token_forbidden(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    scope = source()
    page = await client.get(
        f"/o/{tenant.org}/authorize?{urlencode(authorize_query(tenant, challenge))}",
        scope_base=scope,
    )
    fields = hidden_fields(await page.get_data(as_text=True))
    fields["csrf_token"] = "0" * 64
    form = {
        **fields,
        "username": tenant.username,
        "password": tenant.password,
        "totp": tenant.totp(),
    }
    response = await client.post(f"/o/{tenant.org}/login", form=form, scope_base=scope)
    assert response.status_code == 403
    assert "Location" not in response.headers


async def test_login_with_foreign_csrf_cookie_forbidden(
    client: Client, app: object, tenant: Tenant
) -> None:
    _, challenge = pkce()
    page = await client.get(
        f"/o/{tenant.org}/authorize?{urlencode(authorize_query(tenant, challenge))}"
    )
    fields = hidden_fields(await page.get_data(as_text=True))
    # A second browser (fresh cookie jar) submitting the first browser's form token.
    other = app.test_client()  # type: ignore[attr-defined]
    form = {
        **fields,
        "username": tenant.username,
        "password": tenant.password,
        "totp": tenant.totp(),
    }
    response = await other.post(f"/o/{tenant.org}/login", form=form, scope_base=source())
    assert response.status_code == 403


async def test_wrong_password_fails_without_redirect(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    _, challenge = pkce()
    response = await login(client, tenant, authorize_query(tenant, challenge), password="wrong")
    assert response.status_code == 401
    assert "Location" not in response.headers
    assert "Sign-in failed" in await response.get_data(as_text=True)
    assert await _audit_reasons(superuser, tenant) == ["wrong_password"]


async def test_replayed_totp_fails(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    _, challenge = pkce()
    code = tenant.totp()
    first = await login(client, tenant, authorize_query(tenant, challenge), totp=code)
    assert first.status_code == 303
    second = await login(
        client, tenant, authorize_query(tenant, challenge, prompt="login"), totp=code
    )
    assert second.status_code == 401
    assert await _audit_reasons(superuser, tenant) == ["totp_replayed"]


async def test_lockout_after_repeated_failures(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    _, challenge = pkce()
    for _ in range(5):
        failed = await login(client, tenant, authorize_query(tenant, challenge), password="wrong")
        assert failed.status_code == 401
    correct = await login(client, tenant, authorize_query(tenant, challenge))
    assert correct.status_code == 401
    assert (await _audit_reasons(superuser, tenant))[-1] == "user_locked"
    tenant.clock.advance(15 * 60 + 1)
    unlocked = await login(client, tenant, authorize_query(tenant, challenge))
    assert unlocked.status_code == 303


async def test_source_rate_limit_returns_429(client: Client, tenant: Tenant) -> None:
    _, challenge = pkce()
    scope = source()
    for _ in range(SOURCE_FAILURE_LIMIT):
        failed = await login(
            client, tenant, authorize_query(tenant, challenge), scope=scope, totp="000000"
        )
        assert failed.status_code == 401
    limited = await login(client, tenant, authorize_query(tenant, challenge), scope=scope)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "900"
