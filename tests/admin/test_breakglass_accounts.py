"""Break-glass accounts managed through the admin API, activated on the break-glass plane."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from jwcrypto import jwk
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.identity.totp import STEP_SECONDS, code_at
from appliance.keys.envelope import EnvelopeError
from appliance.keys.sealing import sealing_private_key, unseal
from appliance.settings import Plane
from tests.admin.conftest import Tenant, call
from tests.conftest import Database

PASSPHRASE = "a passphrase for emergencies"


@pytest.fixture
async def breakglass_app(database: Database, clock: FrozenClock) -> AsyncIterator[Quart]:
    application = create_app(database.settings(Plane.BREAKGLASS), clock=clock)
    async with application.test_app():
        yield application


def seed(entry: dict[str, Any]) -> str:
    return parse_qs(urlsplit(entry["totp"]["provisioning_uri"]).query)["secret"][0]


def code(secret: str, clock: FrozenClock) -> str:
    return code_at(secret, int(clock.now.timestamp() // STEP_SECONDS))


def activation(account: str, totp: str, **extra: Any) -> dict[str, Any]:
    holder = jwk.JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)
    return {
        "account": account,
        "passphrase": PASSPHRASE,
        "totp": totp,
        "incident": "INC-1",
        "reason": "drill of the admin plane",
        "holder_jwk": holder,
        **extra,
    }


async def create(
    client: Client, tenant: Tenant, name: str, custodians: list[str], **extra: Any
) -> tuple[int, Any]:
    body = {
        "name": name,
        "role": "breakglass-admin",
        "passphrase": PASSPHRASE,
        "custodians": custodians,
        **extra,
    }
    return await call(
        client,
        "POST",
        f"/admin/v1/orgs/{tenant.org}/breakglass/accounts",
        tenant.users["admin"],
        json=body,
    )


async def test_single_custodian_account_activates(
    client: Client, tenant: Tenant, breakglass_app: Quart, clock: FrozenClock
) -> None:
    status, body = await create(client, tenant, "solo", ["carol"], default_ttl_seconds=600)
    assert status == 201, body
    assert body["account"]["custodians_required"] == 1
    secret = seed(body["custodians"][0])
    bg = breakglass_app.test_client()
    response = await bg.post(
        f"/o/{tenant.org}/breakglass/activate",
        json=activation("solo", code(secret, clock)),
        scope_base={"client": ("192.0.2.10", 4000)},
    )
    assert response.status_code == 201, await response.get_json()
    assert (await response.get_json())["ttl_seconds"] == 600
    status, shown = await call(
        client,
        "GET",
        f"/admin/v1/orgs/{tenant.org}/breakglass/accounts/solo",
        tenant.users["auditor"],
    )
    assert status == 200
    assert shown["account"]["last_activated_at"] is not None
    assert shown["account"]["recent_activations"][0]["outcome"] == "success"
    assert shown["account"]["recent_activations"][0]["incident"] == "INC-1"


async def test_two_custodians_each_need_their_code(
    client: Client,
    tenant: Tenant,
    breakglass_app: Quart,
    clock: FrozenClock,
    database: Database,
    superuser: asyncpg.Connection,
) -> None:
    status, body = await create(client, tenant, "pair", ["carol", "dave"])
    assert status == 201, body
    first, second = (seed(c) for c in body["custodians"])
    assert first != second
    assert body["account"]["custodians_required"] == 2

    # Each seed is sealed to the break-glass plane; the admin plane cannot open it.
    rows = await superuser.fetch(
        "SELECT c.totp_secret_sealed FROM breakglass_custodians c JOIN breakglass_accounts a "
        "ON a.id = c.account_id WHERE a.org_id = $1 AND a.name = 'pair' ORDER BY c.position",
        tenant.org_id,
    )
    bg_key = sealing_private_key(database.master_secrets[Plane.BREAKGLASS], "breakglass")
    admin_key = sealing_private_key(database.master_secrets[Plane.ADMIN], "admin")
    assert [unseal(bg_key, bytes(r["totp_secret_sealed"])).decode() for r in rows] == [
        first,
        second,
    ]
    with pytest.raises(EnvelopeError):
        unseal(admin_key, bytes(rows[0]["totp_secret_sealed"]))

    bg = breakglass_app.test_client()
    path = f"/o/{tenant.org}/breakglass/activate"
    scope = {"client": ("192.0.2.11", 4000)}
    alone = await bg.post(path, json=activation("pair", code(first, clock)), scope_base=scope)
    assert alone.status_code == 401
    clock.advance(STEP_SECONDS)
    both = await bg.post(
        path,
        json=activation("pair", code(first, clock), second_totp=code(second, clock)),
        scope_base=scope,
    )
    assert both.status_code == 201, await both.get_json()


async def test_enroll_second_custodian_and_reenroll(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, body = await create(client, tenant, "grow", ["carol"])
    assert status == 201
    base = f"/admin/v1/orgs/{tenant.org}/breakglass/accounts/grow"
    status, added = await call(client, "POST", f"{base}/custodians", admin, json={"name": "dave"})
    assert status == 201
    assert added["custodian"]["position"] == 2
    assert added["account"]["custodians_required"] == 2
    status, again = await call(client, "POST", f"{base}/custodians", admin, json={"name": "carol"})
    assert status == 201
    assert again["custodian"]["position"] == 1
    assert seed(again["custodian"]) != seed(body["custodians"][0])
    status, _third = await call(client, "POST", f"{base}/custodians", admin, json={"name": "erin"})
    assert status == 409
    status, lowered = await call(client, "PATCH", base, admin, json={"custodians_required": 1})
    assert status == 200
    assert lowered["account"]["custodians_required"] == 1


async def test_lifetime_rules(client: Client, tenant: Tenant) -> None:
    admin = tenant.users["admin"]
    status, body = await create(
        client, tenant, "short", ["carol"], default_ttl_seconds=1200, max_ttl_seconds=600
    )
    assert status == 400
    assert "exceeds max_ttl_seconds" in body["error_description"]
    status, body = await create(client, tenant, "short", ["carol"], max_ttl_seconds=7200)
    assert status == 400
    status, body = await create(client, tenant, "short", ["carol"])
    assert status == 201
    base = f"/admin/v1/orgs/{tenant.org}/breakglass/accounts/short"
    status, body = await call(client, "PATCH", base, admin, json={"max_ttl_seconds": 300})
    assert status == 400
    status, body = await call(
        client, "PATCH", base, admin, json={"default_ttl_seconds": 300, "max_ttl_seconds": 600}
    )
    assert status == 200
    assert (body["account"]["default_ttl_seconds"], body["account"]["max_ttl_seconds"]) == (
        300,
        600,
    )


async def test_disable_and_passphrase_change_apply(
    client: Client, tenant: Tenant, breakglass_app: Quart, clock: FrozenClock
) -> None:
    admin = tenant.users["admin"]
    status, body = await create(client, tenant, "toggle", ["carol"])
    secret = seed(body["custodians"][0])
    base = f"/admin/v1/orgs/{tenant.org}/breakglass/accounts/toggle"
    status, body = await call(client, "POST", f"{base}/disable", admin)
    assert body["account"]["disabled"] is True
    bg = breakglass_app.test_client()
    path = f"/o/{tenant.org}/breakglass/activate"
    scope = {"client": ("192.0.2.12", 4000)}
    refused = await bg.post(path, json=activation("toggle", code(secret, clock)), scope_base=scope)
    assert refused.status_code == 401
    await call(client, "POST", f"{base}/enable", admin)
    status, _ = await call(client, "PUT", f"{base}/passphrase", admin, json={"passphrase": "short"})
    assert status == 400
    status, _ = await call(
        client,
        "PUT",
        f"{base}/passphrase",
        admin,
        json={"passphrase": "the new emergency passphrase"},
    )
    assert status == 200
    clock.advance(STEP_SECONDS)
    old = await bg.post(path, json=activation("toggle", code(secret, clock)), scope_base=scope)
    assert old.status_code == 401
    clock.advance(STEP_SECONDS)
    new = await bg.post(
        path,
        json=activation("toggle", code(secret, clock), passphrase="the new emergency passphrase"),
        scope_base=scope,
    )
    assert new.status_code == 201, await new.get_json()


async def test_duplicate_account_is_409(client: Client, tenant: Tenant) -> None:
    assert (await create(client, tenant, "dup", ["carol"]))[0] == 201
    status, body = await create(client, tenant, "dup", ["carol"])
    assert status == 409
    assert body["error"] == "conflict"
    status, body = await create(client, tenant, "three", ["a", "b", "c"])
    assert status == 400
