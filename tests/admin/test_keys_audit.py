"""Keys (public fields, retire, revoke, rotation requests) and the audit API."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from appliance.audit.export import verify_export
from appliance.audit.verify import ChainBroken
from appliance.clock import FrozenClock
from appliance.db.tenancy import set_org
from appliance.keys.signing import SigningKeyStore
from appliance.settings import Plane
from tests.admin.conftest import Tenant, call
from tests.conftest import Database


async def make_keys(
    database: Database, superuser: asyncpg.Connection, tenant: Tenant, clock: FrozenClock
) -> tuple[str, str]:
    store = SigningKeyStore("breakglass", database.master_secrets[Plane.BREAKGLASS])
    async with superuser.transaction():
        await set_org(superuser, tenant.org_id)
        active = await store.active(superuser, tenant.org_id, now=clock.now)
        upcoming = await store.create(superuser, tenant.org_id, status="next", now=clock.now)
    return active.kid, upcoming.kid


async def test_keys_list_public_fields_and_change_status(
    client: Client,
    tenant: Tenant,
    database: Database,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
) -> None:
    admin = tenant.users["admin"]
    active, upcoming = await make_keys(database, superuser, tenant, clock)
    base = f"/admin/v1/orgs/{tenant.org}/keys"
    status, body = await call(client, "GET", f"{base}?plane=breakglass", tenant.users["auditor"])
    assert status == 200
    assert {k["kid"]: k["status"] for k in body["keys"]} == {active: "active", upcoming: "next"}
    assert all("private" not in json.dumps(k) for k in body["keys"])
    status, body = await call(
        client, "POST", f"{base}/{active}/retire", admin, json={"publish_seconds": 3600}
    )
    assert status == 200
    assert body["key"]["status"] == "retired"
    assert body["key"]["publish_until"] == (clock.now + timedelta(hours=1)).isoformat()
    status, body = await call(client, "POST", f"{base}/{active}/retire", admin)
    assert status == 409
    status, body = await call(client, "POST", f"{base}/{upcoming}/revoke", admin)
    assert status == 200
    assert body["key"]["status"] == "revoked"
    status, body = await call(client, "POST", f"{base}/{upcoming}/revoke", admin)
    assert status == 409
    status, body = await call(client, "GET", f"{base}?plane=mars", admin)
    assert status == 400


async def test_admin_role_cannot_read_private_key_columns(
    database: Database, tenant: Tenant
) -> None:
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        async with conn.transaction():
            await set_org(conn, tenant.org_id)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT private_key_ciphertext FROM signing_keys")
    finally:
        await conn.close()


async def test_rotation_request_is_recorded_once(
    client: Client, tenant: Tenant, database: Database
) -> None:
    admin = tenant.users["admin"]
    path = f"/admin/v1/orgs/{tenant.org}/keys/rotation-requests"
    status, first = await call(client, "POST", path, admin, json={"plane": "breakglass"})
    assert status == 202
    assert first["rotation_request"]["already_pending"] is False
    status, second = await call(client, "POST", path, admin, json={"plane": "breakglass"})
    assert status == 202
    assert second["rotation_request"]["already_pending"] is True
    assert second["rotation_request"]["id"] == first["rotation_request"]["id"]
    status, body = await call(client, "POST", path, admin, json={"plane": "admin"})
    assert status == 400
    # The owning plane's role reads and completes its own requests only.
    conn = await asyncpg.connect(database.dsn(Plane.BREAKGLASS))
    try:
        async with conn.transaction():
            await set_org(conn, tenant.org_id)
            rows = await conn.fetch("SELECT id, plane FROM key_rotation_requests")
            assert [r["plane"] for r in rows] == ["breakglass"]
            await conn.execute(
                "UPDATE key_rotation_requests SET status = 'completed', completed_at = now(), "
                "new_kid = 'breakglass-new' WHERE id = $1",
                rows[0]["id"],
            )
    finally:
        await conn.close()
    status, body = await call(client, "GET", path, admin)
    assert body["rotation_requests"][0]["status"] == "completed"
    assert body["rotation_requests"][0]["new_kid"] == "breakglass-new"


async def test_audit_search_filters(client: Client, tenant: Tenant, clock: FrozenClock) -> None:
    auditor = tenant.users["auditor"]
    admin = tenant.users["admin"]
    await call(client, "POST", f"/admin/v1/orgs/{tenant.org}/groups", admin, json={"name": "ops"})
    base = f"/admin/v1/orgs/{tenant.org}/audit/events"
    status, body = await call(client, "GET", f"{base}?event_type=group.created", auditor)
    assert [e["subject"] for e in body["events"]] == ["ops"]
    status, body = await call(client, "GET", f"{base}?actor=admin&subject=ops", auditor)
    assert [e["event_type"] for e in body["events"]] == ["group.created"]
    later = (clock.now + timedelta(minutes=1)).isoformat()
    status, body = await call(
        client, "GET", f"{base}?since={later.replace('+00:00', 'Z')}", auditor
    )
    assert body["events"] == []
    status, body = await call(client, "GET", f"{base}?limit=2", auditor)
    assert len(body["events"]) == 2
    assert body["next_after_seq"] == body["events"][-1]["seq"]
    for bad in (
        "since=yesterday",
        "since=2026-01-01T00:00:00",
        "limit=0",
        "after_seq=-1",
        f"since={later}&until={later}",
    ):
        status, body = await call(client, "GET", f"{base}?{bad}", auditor)
        assert status == 400, bad


async def test_audit_verify_detects_tampering(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    auditor = tenant.users["auditor"]
    path = f"/admin/v1/orgs/{tenant.org}/audit/verify"
    status, body = await call(client, "GET", path, auditor)
    assert body["verified"] is True
    await superuser.execute(
        "UPDATE audit_events SET actor = 'mallory' WHERE org_id = $1 AND seq = 2", tenant.org_id
    )
    status, body = await call(client, "GET", path, auditor)
    assert status == 200
    assert body["verified"] is False
    assert body["broken_at_seq"] == 2


async def test_audit_export_verifies_offline(client: Client, tenant: Tenant) -> None:
    auditor = tenant.users["auditor"]
    response = await client.get(
        f"/admin/v1/orgs/{tenant.org}/audit/export", headers=auditor.headers
    )
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = (await response.get_data(as_text=True)).splitlines()
    report = verify_export(lines)
    assert report.anchored is True
    assert report.events == len(lines)
    record = json.loads(lines[1])
    record["data"] = {"forged": True}
    with pytest.raises(ChainBroken) as broken:
        verify_export([lines[0], json.dumps(record), *lines[2:]])
    assert broken.value.seq == 2
    with pytest.raises(ChainBroken):
        verify_export([lines[0], *lines[2:], lines[1]])
    gapped = verify_export([lines[0], *lines[2:]])
    assert gapped.gaps == [(2, 2)]
