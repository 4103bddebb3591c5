"""The rules of approval: who may decide, how often, and when a decision is too late."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network

import asyncpg
import pytest

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.identity.source_limit import MAX_FAILURES, WINDOW_SECONDS
from appliance.pim.model import Policy
from appliance.settings import Plane
from tests.conftest import Database
from tests.pim.conftest import ROLE, World, audit_events, make_world


async def post(world: World, name: str, request_id: str, action: str, body: object = None):  # type: ignore[no-untyped-def]
    return await world.call(name, "POST", f"requests/{request_id}/{action}", body)


async def error_of(response) -> str:  # type: ignore[no-untyped-def]
    return (await response.get_json())["error"]  # type: ignore[no-any-return]


async def test_requester_cannot_approve_own_request(
    world: World, superuser: asyncpg.Connection
) -> None:
    created = await world.request()
    response = await post(world, "alice", created["id"], "approve")
    assert response.status_code == 403
    assert await error_of(response) == "self_approval_forbidden"
    events = await audit_events(superuser, world.org_id, "pim.request.approval")
    assert [(e["actor"], e["outcome"], e["failure_reason"]) for e in events] == [
        ("alice", "failure", "self_approval_forbidden")
    ]


async def test_requester_cannot_deny_own_request(world: World) -> None:
    created = await world.request()
    response = await post(world, "alice", created["id"], "deny")
    assert response.status_code == 403
    assert await error_of(response) == "self_approval_forbidden"


async def test_each_approver_counts_once(world: World) -> None:
    created = await world.request()
    assert (await post(world, "bob", created["id"], "approve")).status_code == 200
    again = await post(world, "bob", created["id"], "approve")
    assert again.status_code == 409
    assert await error_of(again) == "already_decided"
    detail = await (await world.call("bob", "GET", f"requests/{created['id']}")).get_json()
    assert detail["approvals"] == 1
    assert detail["state"] == "pending"


async def test_group_member_approves_as_one(world: World) -> None:
    created = await world.request()
    await post(world, "bob", created["id"], "approve")
    response = await post(world, "erin", created["id"], "approve")
    assert response.status_code == 200
    assert (await response.get_json())["state"] == "active"


async def test_outsider_cannot_see_or_decide(world: World) -> None:
    created = await world.request()
    response = await post(world, "dave", created["id"], "approve")
    assert response.status_code == 404
    assert (await world.call("dave", "GET", f"requests/{created['id']}")).status_code == 404
    listing = await (await world.call("dave", "GET", "requests")).get_json()
    assert listing["requests"] == []


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("deny", "request_denied"),
        ("cancel", "request_cancelled"),
        ("grant", "request_already_granted"),
        ("expire", "request_expired"),
    ],
)
async def test_decision_on_closed_request_is_conflict(
    world: World, setup: str, expected: str
) -> None:
    created = await world.request()
    if setup == "deny":
        await post(world, "bob", created["id"], "deny")
    elif setup == "cancel":
        await post(world, "alice", created["id"], "cancel")
    elif setup == "grant":
        await post(world, "bob", created["id"], "approve")
        await post(world, "erin", created["id"], "approve")
    else:
        world.clock.advance(3601)
    for action in ("approve", "deny"):
        response = await post(world, "carol", created["id"], action)
        assert response.status_code == 409, action
        assert await error_of(response) == expected
        assert "nothing was changed" in (await response.get_json())["error_description"]


async def test_cancel_after_decision_is_conflict(world: World) -> None:
    created = await world.request()
    await post(world, "bob", created["id"], "deny")
    response = await post(world, "alice", created["id"], "cancel")
    assert response.status_code == 409
    assert await error_of(response) == "request_denied"


async def test_approver_cannot_cancel(world: World) -> None:
    created = await world.request()
    response = await post(world, "bob", created["id"], "cancel")
    assert response.status_code == 403
    assert await error_of(response) == "not_requester"


async def test_revoking_pending_or_ended_grant_is_conflict(world: World) -> None:
    created = await world.request()
    pending = await post(world, "bob", created["id"], "revoke")
    assert pending.status_code == 409
    assert await error_of(pending) == "grant_not_active"
    await post(world, "bob", created["id"], "approve")
    await post(world, "carol", created["id"], "approve")
    assert (await post(world, "bob", created["id"], "revoke")).status_code == 200
    again = await post(world, "carol", created["id"], "revoke")
    assert again.status_code == 409
    assert "already ended" in (await again.get_json())["error_description"]


async def test_one_denial_denies(world: World) -> None:
    created = await world.request()
    await post(world, "bob", created["id"], "approve")
    response = await post(
        world, "carol", created["id"], "deny", {"comment": "use the read replica"}
    )
    body = await response.get_json()
    assert body["state"] == "denied"
    assert body["decisions"][-1]["comment"] == "use the read replica"


async def test_ineligible_user_cannot_request(world: World, superuser: asyncpg.Connection) -> None:
    response = await world.call(
        "dave", "POST", "requests", {"role": ROLE, "duration_seconds": 600, "justification": "x"}
    )
    assert response.status_code == 403
    assert await error_of(response) == "not_eligible"
    events = await audit_events(superuser, world.org_id, "pim.request.create")
    assert events[0]["failure_reason"] == "not_eligible"


async def test_unknown_role_is_not_found(world: World) -> None:
    response = await world.call(
        "alice",
        "POST",
        "requests",
        {"role": "no-such-role", "duration_seconds": 600, "justification": "x"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"duration_seconds": 5 * 3600}, "exceeds the role's maximum"),
        ({"duration_seconds": 10}, "out of range"),
        ({"duration_seconds": "30m"}, "must be an integer"),
        ({"justification": ""}, "justification is missing"),
        ({"start": "2020-01-01T00:00:00Z"}, "in the past"),
        ({"start": "tomorrow"}, "not an RFC 3339 time"),
        ({"start": "2099-01-01T00:00:00"}, "no UTC offset"),
        ({"role": "Bad Role"}, "not a valid role name"),
        ({"ticket": "x" * 200}, "longer than 128"),
    ],
)
async def test_bad_request_body_is_rejected(world: World, overrides: dict, fragment: str) -> None:  # type: ignore[type-arg]
    body = {"role": ROLE, "duration_seconds": 1800, "justification": "maintenance"} | overrides
    response = await world.call("alice", "POST", "requests", body)
    assert response.status_code == 400
    assert fragment in (await response.get_json())["error_description"]


async def test_policy_patterns_and_future_start(
    database: Database, superuser: asyncpg.Connection, world: World
) -> None:
    strict = await make_world(
        database,
        superuser,
        world.clock,
        world.client,
        policy=Policy(
            max_duration_seconds=3600,
            approvals_required=1,
            ticket_required=True,
            ticket_pattern=r"CHG-\d+",
            justification_pattern=r".{10,}",
            allow_future_start=False,
        ),
    )
    cases = [
        ({"ticket": None}, "ticket is missing"),
        ({"ticket": "INC-1"}, "ticket pattern"),
        ({"justification": "short"}, "required pattern"),
        ({"start": int(world.clock.now.timestamp()) + 7200}, "does not allow a future start"),
    ]
    for overrides, fragment in cases:
        body = {
            "role": ROLE,
            "duration_seconds": 600,
            "justification": "long enough reason",
            "ticket": "CHG-9",
        }
        body.update(overrides)
        body = {k: v for k, v in body.items() if v is not None}
        response = await strict.call("alice", "POST", "requests", body)
        assert response.status_code == 400, overrides
        assert fragment in (await response.get_json())["error_description"]


async def test_step_up_needs_fresh_totp(
    database: Database, superuser: asyncpg.Connection, world: World
) -> None:
    step_up = await make_world(
        database,
        superuser,
        world.clock,
        world.client,
        policy=Policy(max_duration_seconds=3600, approvals_required=1, totp_step_up=True),
    )
    body = {"role": ROLE, "duration_seconds": 600, "justification": "maintenance"}
    missing = await step_up.call("alice", "POST", "requests", body)
    assert missing.status_code == 403
    assert await error_of(missing) == "step_up_failed"
    # The login used this step's code: the same code is a replay.
    replayed = await step_up.call(
        "alice", "POST", "requests", body | {"totp": step_up.totp("alice")}
    )
    assert replayed.status_code == 403
    world.clock.advance(30)
    fresh = await step_up.call("alice", "POST", "requests", body | {"totp": step_up.totp("alice")})
    assert fresh.status_code == 201


async def test_other_orgs_session_and_requests_are_invisible(
    database: Database, superuser: asyncpg.Connection, world: World
) -> None:
    other = await make_world(database, superuser, world.clock, world.client)
    created = await world.request()
    token = await other.login("bob")
    response = await world.client.post(
        f"/o/{world.org}/pim/api/requests/{created['id']}/approve",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    cross = await other.call("bob", "POST", f"requests/{created['id']}/approve")
    assert cross.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        (
            "POST",
            "requests",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("POST", "requests", {"data": b"role=x", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", "requests", {"json": ["a list"]}, 400),
        ("POST", "requests/not-a-uuid/approve", {}, 404),
        ("POST", "requests/00000000-0000-0000-0000-000000000000/approve", {}, 404),
        (
            "POST",
            "requests",
            {"data": b"x" * (65 * 1024), "headers": {"Content-Type": "application/json"}},
            413,
        ),
        ("GET", "requests?limit=abc", {}, 400),
    ],
)
async def test_bad_input_gets_clear_4xx(
    world: World, method: str, path: str, kwargs: dict, status: int
) -> None:  # type: ignore[type-arg]
    token = await world.login("alice")
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    response = await world.client.open(
        f"/o/{world.org}/pim/api/{path}", method=method, headers=headers, **kwargs
    )
    assert response.status_code == status
    assert "error_description" in await response.get_json()


async def test_missing_or_bad_token_is_unauthorized(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}):
        response = await world.client.get(f"/o/{world.org}/pim/api/requests", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_wrong_password_fails_opaquely(world: World, superuser: asyncpg.Connection) -> None:
    response = await world.client.post(
        f"/o/{world.org}/pim/session",
        json={"username": "alice", "password": "wrong", "totp": world.totp("alice")},
    )
    assert response.status_code == 401
    body = await response.get_json()
    assert body["error"] == "login_failed"
    assert "password" in body["error_description"]
    events = await audit_events(superuser, world.org_id, "user.login_failed")
    assert events[-1]["failure_reason"] == "wrong_password"


async def test_logout_ends_session(world: World) -> None:
    token = await world.login("bob")
    response = await world.client.delete(
        f"/o/{world.org}/pim/session", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 204
    after = await world.client.get(
        f"/o/{world.org}/pim/api/requests", headers={"Authorization": f"Bearer {token}"}
    )
    assert after.status_code == 401


async def test_only_requester_obtains_credentials(world: World) -> None:
    from tests.pim.conftest import holder

    created = await world.request()
    await post(world, "bob", created["id"], "approve")
    await post(world, "carol", created["id"], "approve")
    response = await post(world, "bob", created["id"], "credential", {"holder_jwk": holder()[1]})
    assert response.status_code == 403
    assert await error_of(response) == "not_requester"


async def test_private_holder_key_is_rejected(world: World) -> None:
    from jwcrypto import jwk

    created = await world.request()
    await post(world, "bob", created["id"], "approve")
    await post(world, "carol", created["id"], "approve")
    private = jwk.JWK.generate(kty="EC", crv="P-256").export_private(as_dict=True)
    response = await post(world, "alice", created["id"], "credential", {"holder_jwk": private})
    assert response.status_code == 400
    assert "private key" in (await response.get_json())["error_description"]


async def test_source_limit_counts_forwarded_client(
    database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> None:
    settings = replace(database.settings(Plane.PIM), trusted_proxies=(ip_network("10.0.0.0/8"),))
    application = create_app(settings, clock=clock)
    application.config["PIM_JOBS"] = False
    async with application.test_app():
        world = await make_world(database, superuser, clock, application.test_client())
        path = f"/o/{world.org}/pim/session"
        gateway = {"client": ("10.0.0.7", 40000)}

        def forwarded(address: str) -> dict[str, str]:
            return {"X-Forwarded-For": address}

        # Guessing across users from one client, all through the same gateway.
        for attempt in range(MAX_FAILURES):
            response = await world.client.post(
                path,
                json={"username": f"guess-{attempt}", "password": "wrong", "totp": "000000"},
                scope_base=gateway,
                headers=forwarded("198.51.100.5"),
            )
            assert response.status_code == 401
        alice = world.users["alice"]
        body = {"username": "alice", "password": alice.password, "totp": world.totp("alice")}
        limited = await world.client.post(
            path, json=body, scope_base=gateway, headers=forwarded("198.51.100.5")
        )
        other = await world.client.post(
            path, json=body, scope_base=gateway, headers=forwarded("198.51.100.6")
        )

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == str(WINDOW_SECONDS)
    assert other.status_code == 201
