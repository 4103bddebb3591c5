"""Break-glass alert targets managed through the admin API, called by the break-glass plane."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.keys.envelope import EnvelopeError
from appliance.keys.sealing import sealing_private_key, unseal
from appliance.notify.webhooks import verify_signature
from appliance.settings import Plane
from tests.admin.conftest import Tenant, call
from tests.admin.test_breakglass_accounts import activation, code, create, seed
from tests.admin.test_users import audit_rows
from tests.conftest import Database
from tests.webhook_receiver import WebhookReceiver

SECRET = "a shared webhook secret of ours"


def targets_path(tenant: Tenant) -> str:
    return f"/admin/v1/orgs/{tenant.org}/breakglass/alert-targets"


async def add(client: Client, tenant: Tenant, **body: Any) -> tuple[int, Any]:
    return await call(client, "POST", targets_path(tenant), tenant.users["admin"], json=body)


async def sealed_secret(superuser: asyncpg.Connection, tenant: Tenant, target_id: str) -> bytes:
    async with superuser.transaction():
        await superuser.execute(
            "SELECT set_config('appliance.org_id', $1, true)", str(tenant.org_id)
        )
        sealed = await superuser.fetchval(
            "SELECT secret_sealed FROM breakglass_alert_targets WHERE id = $1::uuid", target_id
        )
    return bytes(sealed)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def breakglass_app(
    database: Database, clock: FrozenClock, superuser: asyncpg.Connection
) -> AsyncIterator[Quart]:
    # Each test has its own frozen clock: another test's job schedule would not be due.
    await superuser.execute("DELETE FROM job_schedule WHERE name = 'breakglass.alerts.deliver'")
    application = create_app(database.settings(Plane.BREAKGLASS), clock=clock)
    async with application.test_app():
        yield application


async def test_create_list_update_delete_target(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    admin = tenant.users["admin"]
    status, created = await add(
        client, tenant, url="https://hooks.example.test/bg", secret=SECRET, payload_format="slack"
    )
    assert status == 201, created
    assert "secret" not in created
    target = created["alert_target"]
    assert target["url"] == "https://hooks.example.test/bg"
    assert target["payload_format"] == "slack"
    assert target["enabled"] is True
    path = f"{targets_path(tenant)}/{target['id']}"

    status, listed = await call(client, "GET", targets_path(tenant), admin)
    assert status == 200
    assert listed["alert_targets"] == [target]

    status, updated = await call(
        client, "PATCH", path, admin, json={"enabled": False, "payload_format": "json"}
    )
    assert status == 200, updated
    assert updated["alert_target"]["enabled"] is False
    assert updated["alert_target"]["payload_format"] == "json"
    status, shown = await call(client, "GET", path, admin)
    assert status == 200
    assert shown["alert_target"]["recent_alerts"] == []

    assert (await call(client, "DELETE", path, admin))[0] == 204
    assert (await call(client, "GET", path, admin))[0] == 404
    assert (await call(client, "DELETE", path, admin))[0] == 404

    [made] = await audit_rows(superuser, tenant, "breakglass.alert_target_created")
    assert made["subject"] == target["id"]
    assert made["actor"] == "admin"
    assert made["data"]["before"] is None
    assert made["data"]["after"] == {
        "url": "https://hooks.example.test/bg",
        "payload_format": "slack",
        "enabled": True,
    }
    assert SECRET not in json.dumps(made)
    [changed] = await audit_rows(superuser, tenant, "breakglass.alert_target_updated")
    assert changed["data"]["before"]["enabled"] is True
    assert changed["data"]["after"]["enabled"] is False
    [deleted] = await audit_rows(superuser, tenant, "breakglass.alert_target_deleted")
    assert deleted["data"]["after"] is None


async def test_secret_sealed_to_breakglass_plane_only(
    client: Client, tenant: Tenant, database: Database, superuser: asyncpg.Connection
) -> None:
    status, created = await add(client, tenant, url="http://127.0.0.1:9/hook")
    assert status == 201, created
    generated = created["secret"]
    assert len(generated) >= 32
    target_id = created["alert_target"]["id"]
    sealed = await sealed_secret(superuser, tenant, target_id)
    breakglass_key = sealing_private_key(database.master_secrets[Plane.BREAKGLASS], "breakglass")
    assert unseal(breakglass_key, sealed).decode() == generated
    admin_key = sealing_private_key(database.master_secrets[Plane.ADMIN], "admin")
    with pytest.raises(EnvelopeError):
        unseal(admin_key, sealed)
    # Never shown again, by any read.
    admin = tenant.users["admin"]
    for path in (targets_path(tenant), f"{targets_path(tenant)}/{target_id}"):
        status, body = await call(client, "GET", path, admin)
        assert status == 200
        assert generated not in json.dumps(body)
        assert "secret" not in json.dumps(body)
    status, body = await call(
        client, "PATCH", f"{targets_path(tenant)}/{target_id}", admin, json={"secret": SECRET}
    )
    assert status == 400
    assert "unknown field 'secret'" in body["error_description"]


async def test_missing_breakglass_seal_key_is_409_naming_plane(
    client: Client, tenant: Tenant, superuser: asyncpg.Connection
) -> None:
    saved = await superuser.fetchval(
        "SELECT public_key FROM plane_seal_keys WHERE plane = 'breakglass'"
    )
    await superuser.execute("DELETE FROM plane_seal_keys WHERE plane = 'breakglass'")
    try:
        status, body = await add(client, tenant, url="https://hooks.example.test/x")
    finally:
        await superuser.execute(
            "INSERT INTO plane_seal_keys (plane, public_key) VALUES ('breakglass', $1)", saved
        )
    assert status == 409
    assert body["error"] == "conflict"
    assert "breakglass plane" in body["error_description"]
    status, listed = await call(client, "GET", targets_path(tenant), tenant.users["admin"])
    assert listed["alert_targets"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://hooks.example.test/x"}, "url"),
        ({"url": "/relative/path"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://hooks.example.test:99999/x"}, "url"),
        ({"url": "https://hooks.example.test/x", "secret": "too short"}, "secret"),
        ({"url": "https://hooks.example.test/x", "payload_format": "xml"}, "payload_format"),
        ({"url": "https://hooks.example.test/x", "events": ["all"]}, "events"),
        ({"url": None}, "url"),
    ],
)
async def test_bad_target_input_is_400_naming_field(
    client: Client, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    status, reply = await add(client, tenant, **body)
    assert status == 400, reply
    assert reply["error"] == "invalid_request"
    assert field in reply["error_description"]


async def test_auditor_reads_but_cannot_change_targets(client: Client, tenant: Tenant) -> None:
    status, created = await add(client, tenant, url="https://hooks.example.test/a", secret=SECRET)
    assert status == 201
    path = f"{targets_path(tenant)}/{created['alert_target']['id']}"
    auditor = tenant.users["auditor"]
    assert (await call(client, "GET", targets_path(tenant), auditor))[0] == 200
    assert (await call(client, "GET", path, auditor))[0] == 200
    for method, url, body in (
        ("POST", targets_path(tenant), {"url": "https://hooks.example.test/b"}),
        ("PATCH", path, {"enabled": False}),
        ("DELETE", path, None),
    ):
        status, reply = await call(client, method, url, auditor, json=body)
        assert status == 403, (method, reply)
        assert "breakglass.write" in reply["error_description"]
    status, shown = await call(client, "GET", path, auditor)
    assert shown["alert_target"]["enabled"] is True


async def test_other_orgs_target_is_404(
    client: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    status, created = await add(client, tenant, url="https://hooks.example.test/a", secret=SECRET)
    assert status == 201
    target_id = created["alert_target"]["id"]
    other_admin = other_tenant.users["admin"]
    theirs = f"{targets_path(other_tenant)}/{target_id}"
    for method, body in (("GET", None), ("PATCH", {"enabled": False}), ("DELETE", None)):
        status, reply = await call(client, method, theirs, other_admin, json=body)
        assert status == 404, (method, reply)
    status, listed = await call(client, "GET", targets_path(other_tenant), other_admin)
    assert listed["alert_targets"] == []
    # The session of one org does not reach the other org's URL either.
    status, _ = await call(client, "GET", targets_path(tenant), other_admin)
    assert status in (401, 404)
    status, shown = await call(
        client, "GET", f"{targets_path(tenant)}/{target_id}", tenant.users["admin"]
    )
    assert shown["alert_target"]["enabled"] is True


async def test_malformed_target_id_is_404(client: Client, tenant: Tenant) -> None:
    status, reply = await call(
        client, "GET", f"{targets_path(tenant)}/not-a-uuid", tenant.users["admin"]
    )
    assert status == 404
    assert reply["error"] == "not_found"


async def test_activation_alert_reaches_admin_target(
    client: Client,
    tenant: Tenant,
    breakglass_app: Quart,
    clock: FrozenClock,
    receiver: WebhookReceiver,
) -> None:
    status, account = await create(client, tenant, "alerted", ["carol"])
    assert status == 201, account
    status, created = await add(client, tenant, url=receiver.url, secret=SECRET)
    assert status == 201, created

    bg = breakglass_app.test_client()
    response = await bg.post(
        f"/o/{tenant.org}/breakglass/activate",
        json=activation("alerted", code(seed(account["custodians"][0]), clock)),
        scope_base={"client": ("192.0.2.44", 4000)},
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    credential_id = (await response.get_json())["credential_id"]
    clock.advance(5)  # the delivery job runs on the app's clock
    [alert] = await receiver.arrived(1)
    assert alert.headers["X-Appliance-Event"] == "breakglass.activated"
    verify_signature(
        SECRET.encode(), alert.headers["X-Appliance-Signature"], alert.body, now=int(time.time())
    )
    assert json.loads(alert.body)["data"]["credential_id"] == credential_id

    path = f"{targets_path(tenant)}/{created['alert_target']['id']}"
    for _ in range(100):
        status, shown = await call(client, "GET", path, tenant.users["admin"])
        recent = shown["alert_target"]["recent_alerts"]
        if recent and recent[0]["status"] != "pending":
            break
        await asyncio.sleep(0.1)
    assert recent[0]["event_type"] == "breakglass.activated"
    assert recent[0]["account"] == "alerted"
    assert recent[0]["status"] == "delivered"
    assert recent[0]["last_http_status"] == 204
