"""Users: TOTP sealed per login plane, shown once; changes audited with before and after."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from appliance.keys.envelope import EnvelopeError
from appliance.keys.sealing import sealing_private_key, unseal
from appliance.settings import Plane
from tests.admin.conftest import Tenant, call
from tests.conftest import Database


def seed_of(totp: dict[str, str]) -> str:
    return parse_qs(urlsplit(totp["provisioning_uri"]).query)["secret"][0]


async def audit_rows(superuser: asyncpg.Connection, tenant: Tenant, event_type: str) -> list[dict]:
    async with superuser.transaction():
        await superuser.execute(
            "SELECT set_config('appliance.org_id', $1, true)", str(tenant.org_id)
        )
        rows = await superuser.fetch(
            "SELECT actor, subject, data FROM audit_events WHERE org_id = $1 AND event_type = $2 "
            "ORDER BY seq",
            tenant.org_id,
            event_type,
        )
    return [
        {"actor": r["actor"], "subject": r["subject"], "data": json.loads(r["data"])} for r in rows
    ]


async def test_create_user_seals_totp_for_each_login_plane(
    client: Client, tenant: Tenant, database: Database, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    status, body = await call(
        client,
        "POST",
        f"/admin/v1/orgs/{tenant.org}/users",
        admin,
        json={"username": "erin", "email": "erin@example.com"},
    )
    assert status == 201, body
    assert body["user"]["totp_planes"] == ["admin", "auth", "pim"]
    assert len(body["password"]) >= 24
    assert base64.b64decode(body["totp"]["qr_png_base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    seed = seed_of(body["totp"])
    async with superuser.transaction():
        await superuser.execute(
            "SELECT set_config('appliance.org_id', $1, true)", str(tenant.org_id)
        )
        seals = await superuser.fetch(
            "SELECT s.plane, s.sealed FROM user_totp_seals s JOIN users u ON u.id = s.user_id "
            "WHERE u.username = 'erin' AND u.org_id = $1 ORDER BY s.plane",
            tenant.org_id,
        )
    assert [s["plane"] for s in seals] == ["admin", "auth", "pim"]
    for row in seals:
        plane = Plane(row["plane"])
        key = sealing_private_key(database.master_secrets[plane], plane.value)
        assert unseal(key, bytes(row["sealed"])).decode() == seed
    breakglass_key = sealing_private_key(database.master_secrets[Plane.BREAKGLASS], "breakglass")
    with pytest.raises(EnvelopeError):
        unseal(breakglass_key, bytes(seals[0]["sealed"]))
    created = await audit_rows(superuser, tenant, "user.created")
    erin = next(e for e in created if e["subject"] == "erin")
    assert erin["actor"] == "admin"
    assert erin["data"]["before"] is None
    assert erin["data"]["after"]["email"] == "erin@example.com"
    assert "password" not in json.dumps(erin["data"]).replace("password_generated", "")


async def test_missing_plane_seal_key_is_409_naming_plane(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    saved = await superuser.fetchrow("SELECT public_key FROM plane_seal_keys WHERE plane = 'pim'")
    await superuser.execute("DELETE FROM plane_seal_keys WHERE plane = 'pim'")
    try:
        status, body = await call(
            client, "POST", f"/admin/v1/orgs/{tenant.org}/users", admin, json={"username": "frank"}
        )
    finally:
        await superuser.execute(
            "INSERT INTO plane_seal_keys (plane, public_key) VALUES ('pim', $1)",
            saved["public_key"],
        )
    assert status == 409
    assert body["error"] == "conflict"
    assert "pim plane" in body["error_description"]
    status, _ = await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/users/frank", admin)
    assert status == 404


async def test_user_changes_are_audited_with_before_and_after(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    base = f"/admin/v1/orgs/{tenant.org}/users/auditor"
    assert (await call(client, "PATCH", base, admin, json={"email": "a@example.com"}))[0] == 200
    assert (await call(client, "POST", f"{base}/disable", admin))[0] == 200
    assert (await call(client, "POST", f"{base}/enable", admin))[0] == 200
    updated = await audit_rows(superuser, tenant, "user.updated")
    assert updated[-1]["data"]["before"]["email"] == ""
    assert updated[-1]["data"]["after"]["email"] == "a@example.com"
    disabled = await audit_rows(superuser, tenant, "user.disabled")
    assert disabled[-1]["data"]["before"]["disabled"] is False
    assert disabled[-1]["data"]["after"]["disabled"] is True


async def test_reset_totp_replaces_seed(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    policy = tenant.users["policy"]
    status, body = await call(
        client, "POST", f"/admin/v1/orgs/{tenant.org}/users/policy/reset-totp", admin
    )
    assert status == 200
    assert seed_of(body["totp"]) != policy.totp_secret
    status, _ = await call(
        client,
        "POST",
        f"/admin/v1/orgs/{tenant.org}/login",
        json={
            "username": "policy",
            "password": "correct horse battery staple",
            "totp": policy.totp(),
        },
    )
    assert status == 401


async def test_unlock_clears_lockout(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/login"
    for _ in range(5):
        await call(
            client,
            "POST",
            path,
            json={"username": "auditor", "password": "wrong password", "totp": "000000"},
        )
    status, body = await call(client, "GET", f"/admin/v1/orgs/{tenant.org}/users/auditor", admin)
    assert body["user"]["locked"] is True
    status, body = await call(
        client, "POST", f"/admin/v1/orgs/{tenant.org}/users/auditor/unlock", admin
    )
    assert status == 200
    assert body["user"]["locked"] is False
    assert body["user"]["failed_attempts"] == 0


async def test_admin_cannot_disable_self_or_drop_last_admin(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, body = await call(
        client, "POST", f"/admin/v1/orgs/{tenant.org}/users/admin/disable", admin
    )
    assert status == 409
    status, body = await call(
        client, "DELETE", f"/admin/v1/orgs/{tenant.org}/role-bindings/admin/org-admin", admin
    )
    assert status == 409
    assert "last enabled org-admin" in body["error_description"]
    status, _ = await call(
        client, "PUT", f"/admin/v1/orgs/{tenant.org}/role-bindings/auditor/org-admin", admin
    )
    assert status == 201
    status, _ = await call(
        client, "DELETE", f"/admin/v1/orgs/{tenant.org}/role-bindings/admin/org-admin", admin
    )
    assert status == 204


async def test_bad_user_input_gets_clear_400(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/users"
    cases = {
        "username": {"username": "Not Valid"},
        "password": {"username": "gina", "password": "short"},
        "unknown field": {"username": "gina", "shell": "/bin/sh"},
        "must not be null": {"username": "gina", "email": None},
        "JSON object": ["gina"],
    }
    for expected, body in cases.items():
        status, reply = await call(client, "POST", path, admin, json=body)
        assert status == 400, body
        assert expected in reply["error_description"]
    status, reply = await call(
        client, "POST", path, admin, data=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    status, reply = await call(
        client,
        "POST",
        path,
        admin,
        data=b"x" * 70_000,
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    status, reply = await call(client, "GET", f"{path}?limit=abc", admin)
    assert status == 400
    status, reply = await call(client, "GET", f"{path}?colour=blue", admin)
    assert status == 400
    assert "colour" in reply["error_description"]


async def test_concurrent_admin_removals_keep_one_admin(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    second = tenant.users["auditor"]
    base = f"/admin/v1/orgs/{tenant.org}/role-bindings"
    assert (await call(client, "PUT", f"{base}/auditor/org-admin", admin))[0] == 201
    results = await asyncio.gather(
        call(client, "DELETE", f"{base}/auditor/org-admin", admin),
        call(client, "DELETE", f"{base}/admin/org-admin", second),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses[0] == 204
    # The loser either waited on the row lock (409) or started after the winner
    # committed, when it no longer held org-admin (403).
    assert statuses[1] in (403, 409)
    remaining = await superuser.fetchval(
        "SELECT count(*) FROM admin_role_bindings WHERE org_id = $1 AND role = 'org-admin'",
        tenant.org_id,
    )
    assert remaining == 1


async def test_failed_change_writes_no_audit_event(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/groups"
    assert (await call(client, "POST", path, admin, json={"name": "ops"}))[0] == 201
    assert (await call(client, "POST", path, admin, json={"name": "ops"}))[0] == 409
    created = await audit_rows(superuser, tenant, "group.created")
    assert [e["subject"] for e in created] == ["ops"]
