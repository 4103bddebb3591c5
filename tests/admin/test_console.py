"""The server-rendered console: login with CSRF, pages, security headers."""

from __future__ import annotations

import re

from quart.typing import TestClientProtocol as Client

from tests.admin.conftest import PASSWORD, Tenant, call


def hidden_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


async def log_in(client: Client, tenant: Tenant) -> None:
    form_page = await client.get("/admin/")
    csrf = hidden_csrf(await form_page.get_data(as_text=True))
    admin = tenant.users["admin"]
    response = await client.post(
        "/admin/login",
        form={
            "csrf": csrf,
            "org": tenant.org,
            "username": "admin",
            "password": PASSWORD,
            "totp": admin.totp(),
        },
    )
    assert response.status_code == 303, await response.get_data(as_text=True)
    assert response.headers["Location"] == f"/admin/o/{tenant.org}/users"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/admin/" in cookie


async def test_console_pages_after_login(client: Client, tenant: Tenant) -> None:
    await call(
        client,
        "POST",
        f"/admin/v1/orgs/{tenant.org}/breakglass/accounts",
        tenant.users["admin"],
        json={
            "name": "oncall",
            "role": "breakglass-admin",
            "passphrase": "long enough passphrase",
            "custodians": ["carol", "dave"],
        },
    )
    await log_in(client, tenant)
    users = await client.get(f"/admin/o/{tenant.org}/users")
    html = await users.get_data(as_text=True)
    assert users.status_code == 200
    assert "auditor" in html
    assert "policy" in html
    csp = users.headers["Content-Security-Policy"]
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert users.headers["X-Frame-Options"] == "DENY"
    breakglass = await client.get(f"/admin/o/{tenant.org}/breakglass")
    html = await breakglass.get_data(as_text=True)
    assert "oncall" in html
    assert "carol, dave" in html
    assert "2 required" in html
    audit = await client.get(f"/admin/o/{tenant.org}/audit")
    html = await audit.get_data(as_text=True)
    assert "Chain verified" in html
    assert "breakglass.account_created" in html
    style = await client.get("/admin/console.css")
    assert style.mimetype == "text/css"


async def test_console_login_requires_csrf(client: Client, tenant: Tenant) -> None:
    await client.get("/admin/")
    admin = tenant.users["admin"]
    response = await client.post(
        "/admin/login",
        form={
            "csrf": "forged",
            "org": tenant.org,
            "username": "admin",
            "password": PASSWORD,
            "totp": admin.totp(),
        },
    )
    assert response.status_code == 403
    assert "SESSION" not in str(response.headers.get("Set-Cookie", "")).upper()


async def test_console_logout_requires_csrf(client: Client, tenant: Tenant) -> None:
    await log_in(client, tenant)
    refused = await client.post(f"/admin/o/{tenant.org}/logout", form={"csrf": "wrong"})
    assert refused.status_code == 403
    page = await client.get(f"/admin/o/{tenant.org}/users")
    csrf = hidden_csrf(await page.get_data(as_text=True))
    done = await client.post(f"/admin/o/{tenant.org}/logout", form={"csrf": csrf})
    assert done.status_code == 303
    after = await client.get(f"/admin/o/{tenant.org}/users")
    assert after.status_code == 303
    assert after.headers["Location"] == "/admin/"


async def test_console_without_session_redirects_and_wrong_role_is_403(
    client: Client, tenant: Tenant
) -> None:
    response = await client.get(f"/admin/o/{tenant.org}/audit")
    assert response.status_code == 303
    client.set_cookie("localhost", "admin_session", tenant.users["policy"].token, path="/admin/")
    response = await client.get(f"/admin/o/{tenant.org}/audit")
    assert response.status_code == 403
    assert "audit.read" in await response.get_data(as_text=True)


async def test_console_escapes_user_content(client: Client, tenant: Tenant) -> None:
    await call(
        client,
        "PATCH",
        f"/admin/v1/orgs/{tenant.org}/users/auditor",
        tenant.users["admin"],
        json={"display_name": "<script>alert(1)</script>"},
    )
    await log_in(client, tenant)
    html = await (await client.get(f"/admin/o/{tenant.org}/users")).get_data(as_text=True)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
