"""Approve, deny, cancel, revoke and issuance fired at once serialise on the request row."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.pim.conftest import World, holder

ROUNDS = 8


async def fire(world: World, calls: dict[str, tuple[str, str, object]]) -> dict[str, int]:
    """Send every call at the same time; return each one's status code."""
    for name, _, _ in calls.values():
        await world.login(name)
    responses = await asyncio.gather(
        *(world.call(name, "POST", path, body) for name, path, body in calls.values())
    )
    return {label: response.status_code for label, response in zip(calls, responses, strict=True)}


async def test_decisions_fired_at_once_serialise(
    world: World, superuser: asyncpg.Connection
) -> None:
    for _ in range(ROUNDS):
        created = await world.request()
        rid = created["id"]
        await world.call("bob", "POST", f"requests/{rid}/approve")
        statuses = await fire(
            world,
            {
                "approve": ("carol", f"requests/{rid}/approve", None),
                "deny": ("erin", f"requests/{rid}/deny", None),
                "cancel": ("alice", f"requests/{rid}/cancel", None),
                "revoke": ("bob", f"requests/{rid}/revoke", None),
            },
        )
        assert set(statuses.values()) <= {200, 409}, statuses
        won = {label for label, status in statuses.items() if status == 200}
        assert len(won & {"approve", "deny", "cancel"}) == 1, statuses
        if "revoke" in won:
            assert "approve" in won, statuses

        final = await (await world.call("bob", "GET", f"requests/{rid}")).get_json()
        expected_state = {
            "approve": "active",
            "deny": "denied",
            "cancel": "cancelled",
        }[next(iter(won & {"approve", "deny", "cancel"}))]
        if "revoke" in won:
            expected_state = "ended"
        assert final["state"] == expected_state, (statuses, final)
        decisions = [(d["approver"], d["decision"]) for d in final["decisions"]]
        assert decisions[0] == ("bob", "approve")
        assert len(decisions) == 1 + len(won & {"approve", "deny"}), (statuses, decisions)

        successes = await superuser.fetchval(
            "SELECT count(*) FROM audit_events "
            "WHERE org_id = $1 AND subject = $2 AND outcome = 'success' AND event_type IN "
            "('pim.request.approved', 'pim.request.denied', 'pim.request.cancelled', "
            "'pim.grant.revoked')",
            world.org_id,
            rid,
        )
        assert successes == len(won), (statuses, successes)


async def test_revocations_and_issuance_fired_at_once(
    world: World, superuser: asyncpg.Connection
) -> None:
    for _ in range(ROUNDS):
        created = await world.request()
        rid = created["id"]
        await world.call("bob", "POST", f"requests/{rid}/approve")
        await world.call("carol", "POST", f"requests/{rid}/approve")
        statuses = await fire(
            world,
            {
                "revoke-bob": ("bob", f"requests/{rid}/revoke", {"comment": "b"}),
                "revoke-carol": ("carol", f"requests/{rid}/revoke", {"comment": "c"}),
                "relinquish": ("alice", f"requests/{rid}/revoke", None),
                "credential": ("alice", f"requests/{rid}/credential", {"holder_jwk": holder()[1]}),
            },
        )
        ended = [
            label
            for label in ("revoke-bob", "revoke-carol", "relinquish")
            if statuses[label] == 200
        ]
        assert len(ended) == 1, statuses
        assert statuses["credential"] in (201, 409), statuses
        # Whatever the order, no credential of the grant is left valid.
        unrevoked = await superuser.fetchval(
            "SELECT count(*) FROM pim_credentials WHERE request_id = $1 AND revoked_at IS NULL", rid
        )
        assert unrevoked == 0, statuses
