"""Embedded login on the admin plane: password + TOTP -> short-lived bearer token."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
from quart.typing import TestClientProtocol as Client

from appliance.admin.demo import seed_admin_demo
from appliance.clock import FrozenClock
from appliance.db.tenancy import set_org
from appliance.identity.source_limit import MAX_FAILURES, WINDOW_SECONDS
from appliance.identity.totp import STEP_SECONDS, code_at
from tests.admin.conftest import PASSWORD, AdminUser, Tenant, call
from tests.conftest import Database, create_org


def login_body(user: AdminUser, **overrides: str) -> dict[str, str]:
    body = {"username": user.username, "password": PASSWORD, "totp": user.totp()}
    body.update(overrides)
    return body


async def failures(superuser: asyncpg.Connection, user: AdminUser) -> list[str]:
    async with superuser.transaction():
        await superuser.execute("SELECT set_config('appliance.org_id', $1, true)", str(user.org_id))
        rows = await superuser.fetch(
            "SELECT failure_reason FROM audit_events WHERE org_id = $1 AND outcome = 'failure' "
            "AND subject = $2 ORDER BY seq",
            user.org_id,
            user.username,
        )
    return [r["failure_reason"] for r in rows]


async def test_login_returns_working_token(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, body = await call(
        client, "POST", f"/admin/v1/orgs/{tenant.org}/login", json=login_body(admin)
    )
    assert status == 200, body
    assert body["token"].startswith(f"{tenant.org}.")
    assert body["expires_in"] == 15 * 60
    assert body["roles"] == ["org-admin"]
    headers = {"Authorization": f"Bearer {body['token']}"}
    status, me = await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/me", headers=headers)
    assert status == 200
    assert me["username"] == "admin"
    assert "users.write" in me["permissions"]


async def test_login_failures_are_opaque_and_audited(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    nobody = tenant.users["nobody"]
    path = f"/admin/v1/orgs/{tenant.org}/login"
    cases = [
        login_body(admin, password="wrong password!"),
        login_body(admin, totp="123456" if admin.totp() != "123456" else "654321"),
        login_body(nobody),
    ]
    descriptions = set()
    for body in cases:
        status, reply = await call(client, "POST", path, json=body)
        assert status == 401
        assert reply["error"] == "unauthorized"
        descriptions.add(reply["error_description"])
    assert len(descriptions) == 1
    assert await failures(superuser, admin) == ["wrong_password", "wrong_totp"]
    assert await failures(superuser, nobody) == ["no_admin_role"]


async def test_totp_code_works_once(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    body = login_body(admin)
    path = f"/admin/v1/orgs/{tenant.org}/login"
    assert (await call(client, "POST", path, json=body))[0] == 200
    assert (await call(client, "POST", path, json=body))[0] == 401


async def test_session_expires_after_fifteen_minutes(
    client: Client, tenant: Tenant, clock: FrozenClock
) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/me"
    assert (await call(client, "GET", path, admin))[0] == 200
    clock.advance(15 * 60 + 1)
    status, body = await call(client, "GET", path, admin)
    assert status == 401
    assert body["error"] == "unauthorized"


async def test_logout_revokes_token(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, _ = await call(client, "POST", f"/admin/v1/orgs/{tenant.org}/logout", admin)
    assert status == 204
    assert (await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/me", admin))[0] == 401


async def test_malformed_and_tampered_tokens_get_401(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/users"
    org, secret = admin.token.split(".", 1)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for header in (
        None,
        "Basic abc",
        "Bearer ",
        "Bearer not-a-token",
        f"Bearer {org}.{flipped}",
        f"Bearer {org}.{'x' * 300}",
        f"Bearer no-such-org.{secret}",
    ):
        headers = {} if header is None else {"Authorization": header}
        status, body = await call(client, "GET", path, headers=headers)
        assert status == 401, header
        assert body["error"] == "unauthorized"


async def test_disabled_user_session_stops_working(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    auditor = tenant.users["auditor"]
    assert (await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/me", auditor))[0] == 200
    status, _ = await call(
        client, "POST", f"/admin/v1/orgs/{tenant.org}/users/auditor/disable", admin
    )
    assert status == 200
    assert (await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/me", auditor))[0] == 401


async def test_login_to_unknown_org_is_404(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, body = await call(
        client, "POST", "/admin/v1/orgs/no-such-org/login", json=login_body(admin)
    )
    assert status == 404
    assert body["error"] == "not_found"


async def test_demo_admin_logs_in(
    client: Client, database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> None:
    org_id, org = await create_org(superuser)
    async with superuser.transaction():
        await set_org(superuser, org_id)
        seeded = await seed_admin_demo(
            superuser,
            org_id,
            plane_master_secrets=database.master_secrets,
            actor="tests",
            now=clock.now,
        )
    admin = seeded["admin"]
    assert set(admin) == {"username", "password", "totp_secret"}
    step = int(clock.now.timestamp() // STEP_SECONDS)
    status, body = await call(
        client,
        "POST",
        f"/admin/v1/orgs/{org}/login",
        json={
            "username": admin["username"],
            "password": admin["password"],
            "totp": code_at(admin["totp_secret"], step),
        },
    )
    assert status == 200, body
    assert body["roles"] == ["org-admin"]


def from_address() -> dict[str, Any]:
    """A scope with a fresh client address, so the login limit does not leak between tests."""
    return {"client": (f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}", 40000)}


async def test_source_limit_returns_429(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/login"
    address = from_address()
    # Guessing across users: no single user reaches its lockout.
    for attempt in range(MAX_FAILURES):
        response = await client.post(
            path, json=login_body(admin, username=f"guess-{attempt}"), scope_base=address
        )
        assert response.status_code == 401

    limited = await client.post(path, json=login_body(admin), scope_base=address)
    other = await client.post(path, json=login_body(admin), scope_base=from_address())

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == str(WINDOW_SECONDS)
    assert other.status_code == 200
