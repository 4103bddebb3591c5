"""The elevation flow through the JSON API: request, approvals, grant, credential, revocation."""

from __future__ import annotations

import base64
import json

import asyncpg
import pytest

from appliance.credentials import (
    CredentialError,
    check_status,
    present,
    verify_presentation,
    verify_status_list_token,
)
from appliance.pim.model import Policy
from tests.conftest import Database
from tests.pim.conftest import ROLE, World, audit_events, holder, make_world

AUD = "https://db.example"
NONCE = "nonce-1"


async def approve(world: World, name: str, request_id: str, comment: str = "ok") -> dict:  # type: ignore[type-arg]
    response = await world.call(
        name, "POST", f"requests/{request_id}/approve", {"comment": comment}
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()  # type: ignore[no-any-return]


async def obtain_credential(world: World, request_id: str) -> tuple[object, dict]:  # type: ignore[type-arg]
    key, public = holder()
    response = await world.call(
        "alice", "POST", f"requests/{request_id}/credential", {"holder_jwk": public}
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    return key, await response.get_json()


async def verify(world: World, credential: str, key: object) -> object:
    """Present and verify the credential, including its status, as a relying party would."""
    client = world.client
    now = int(world.clock.now.timestamp())
    presentation = present(credential, key, aud=AUD, nonce=NONCE, now=now)  # type: ignore[arg-type]
    jwks = await (await client.get(f"/o/{world.org}/pim/jwks.json")).get_json()
    verified = verify_presentation(
        presentation,
        issuer_jwks=jwks,
        expected_issuer=f"https://appliance.test/o/{world.org}/pim",
        expected_aud=AUD,
        expected_nonce=NONCE,
        now=now,
    )
    uri = verified.status["status_list"]["uri"]  # type: ignore[index]
    path = uri.removeprefix("https://appliance.test")
    token_response = await client.get(path)
    assert token_response.headers["Content-Type"] == "application/statuslist+jwt"
    token = await token_response.get_data(as_text=True)
    status_list = verify_status_list_token(
        token, issuer_jwks=jwks, expected_uri=uri, now=now, expected_issuer=verified.issuer
    )
    check_status(verified, status_list)
    return verified


async def test_two_approvals_grant_and_credential_verifies(world: World) -> None:
    created = await world.request()
    assert created["state"] == "pending"
    assert created["approvals_required"] == 2

    first = await approve(world, "bob", created["id"])
    assert first["state"] == "pending"
    assert first["approvals"] == 1
    second = await approve(world, "carol", created["id"])
    assert second["state"] == "active"
    assert second["approvals"] == 2

    key, issued = await obtain_credential(world, created["id"])
    verified = await verify(world, issued["credential"], key)
    assert verified.subject == "alice"  # type: ignore[attr-defined]
    assert verified.disclosed["role"] == ROLE  # type: ignore[attr-defined]
    assert verified.disclosed["approvers"] == ["bob", "carol"]  # type: ignore[attr-defined]
    assert verified.disclosed["ticket"] == "CHG-1234"  # type: ignore[attr-defined]
    assert verified.disclosed["justification"] == "rotate the replication password"  # type: ignore[attr-defined]


async def test_credential_expires_with_the_grant(world: World) -> None:
    created = await world.request(duration_seconds=1800)
    await approve(world, "bob", created["id"])
    granted = await approve(world, "carol", created["id"])
    world.clock.advance(600)
    _, issued = await obtain_credential(world, created["id"])
    grant_end = int(world.clock.now.timestamp()) - 600 + 1800
    assert issued["expires_at"] == grant_end
    assert granted["grant"]["ends_at"] is not None


async def test_revoked_grant_credentials_fail_at_once(world: World) -> None:
    created = await world.request()
    await approve(world, "bob", created["id"])
    await approve(world, "carol", created["id"])
    key, issued = await obtain_credential(world, created["id"])
    await verify(world, issued["credential"], key)

    revoked = await world.call(
        "carol", "POST", f"requests/{created['id']}/revoke", {"comment": "done"}
    )
    assert revoked.status_code == 200
    body = await revoked.get_json()
    assert body["grant"]["end_reason"] == "revoked"
    assert body["grant"]["ended_by"] == "carol"

    with pytest.raises(CredentialError) as caught:
        await verify(world, issued["credential"], key)
    assert caught.value.code == "status_revoked"


async def test_relinquished_grant_credentials_fail(world: World) -> None:
    created = await world.request()
    await approve(world, "bob", created["id"])
    await approve(world, "carol", created["id"])
    key, issued = await obtain_credential(world, created["id"])
    response = await world.call("alice", "POST", f"requests/{created['id']}/revoke")
    assert (await response.get_json())["grant"]["end_reason"] == "relinquished"
    with pytest.raises(CredentialError) as caught:
        await verify(world, issued["credential"], key)
    assert caught.value.code == "status_revoked"


async def test_credential_reissued_while_grant_active(world: World) -> None:
    created = await world.request()
    await approve(world, "bob", created["id"])
    await approve(world, "carol", created["id"])
    key_one, first = await obtain_credential(world, created["id"])
    key_two, second = await obtain_credential(world, created["id"])
    assert first["credential_id"] != second["credential_id"]
    assert first["status"] != second["status"]
    await verify(world, second["credential"], key_two)
    await verify(world, first["credential"], key_one)


async def test_zero_approval_policy_grants_at_once(
    database: Database, superuser: asyncpg.Connection, world: World
) -> None:
    open_world = await make_world(
        database,
        superuser,
        world.clock,
        world.client,
        policy=Policy(max_duration_seconds=3600, approvals_required=0),
    )
    created = await open_world.request()
    assert created["state"] == "active"
    key, issued = await obtain_credential(open_world, created["id"])
    await verify(open_world, issued["credential"], key)


async def test_future_start_is_scheduled_until_start(world: World) -> None:
    # Within the 30-minute session, so alice need not sign in again.
    start = world.clock.now.timestamp() + 1200
    created = await world.request(start=int(start))
    await approve(world, "bob", created["id"])
    granted = await approve(world, "carol", created["id"])
    assert granted["state"] == "scheduled"
    _, public = holder()
    early = await world.call(
        "alice", "POST", f"requests/{created['id']}/credential", {"holder_jwk": public}
    )
    assert early.status_code == 409
    assert (await early.get_json())["error"] == "grant_not_active"
    world.clock.advance(1200)
    key, issued = await obtain_credential(world, created["id"])
    assert issued["expires_at"] == int(start) + 1800
    await verify(world, issued["credential"], key)


async def test_every_step_is_audited(world: World, superuser: asyncpg.Connection) -> None:
    created = await world.request()
    await approve(world, "bob", created["id"])
    await approve(world, "carol", created["id"])
    await obtain_credential(world, created["id"])
    await world.call("bob", "POST", f"requests/{created['id']}/revoke")
    expected = [
        "pim.request.created",
        "pim.request.approval",
        "pim.request.approved",
        "pim.grant.activated",
        "pim.credential.issued",
        "pim.grant.revoked",
    ]
    for event_type in expected:
        events = await audit_events(superuser, world.org_id, event_type)
        assert events, f"no {event_type} event"
        assert all(json.loads(e["data"])["request_id"] == created["id"] for e in events)
    approvals = await audit_events(superuser, world.org_id, "pim.request.approval")
    assert [e["actor"] for e in approvals] == ["bob", "carol"]


async def test_status_list_token_is_cached_until_a_change(world: World) -> None:
    created = await world.request()
    await approve(world, "bob", created["id"])
    await approve(world, "carol", created["id"])
    _, issued = await obtain_credential(world, created["id"])
    path = issued["status"]["status_list"]["uri"].removeprefix("https://appliance.test")
    first = await (await world.client.get(path)).get_data(as_text=True)
    world.clock.advance(10)
    second = await (await world.client.get(path)).get_data(as_text=True)
    assert first == second
    await world.call("bob", "POST", f"requests/{created['id']}/revoke")
    third = await (await world.client.get(path)).get_data(as_text=True)
    assert third != first


async def test_issuer_metadata_and_status_list_token_shape(
    world: World, database: Database, superuser: asyncpg.Connection
) -> None:
    metadata = await (
        await world.client.get(f"/.well-known/jwt-vc-issuer/o/{world.org}/pim")
    ).get_json()
    assert metadata == {
        "issuer": f"https://appliance.test/o/{world.org}/pim",
        "jwks_uri": f"https://appliance.test/o/{world.org}/pim/jwks.json",
    }
    created = await world.request()
    await approve(world, "bob", created["id"])
    await approve(world, "carol", created["id"])
    _, issued = await obtain_credential(world, created["id"])
    uri = issued["status"]["status_list"]["uri"]
    token = await (await world.client.get(uri.removeprefix("https://appliance.test"))).get_data(
        as_text=True
    )
    header, payload = (
        json.loads(base64.urlsafe_b64decode(part + "==")) for part in token.split(".")[:2]
    )
    assert header["typ"] == "statuslist+jwt"
    assert payload["sub"] == uri
    assert payload["ttl"] == 300
    assert payload["status_list"]["bits"] == 1

    other = await make_world(database, superuser, world.clock, world.client)
    list_id = uri.rsplit("/", 1)[1]
    cross = await world.client.get(f"/o/{other.org}/pim/statuslists/{list_id}")
    assert cross.status_code == 404
