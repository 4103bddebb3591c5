"""Fixtures for the PIM plane: an org with users, a role, and the plane's app."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from jwcrypto import jwk
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.db.queries.identity import GROUP_INSERT, GROUP_MEMBER_ADD
from appliance.db.tenancy import set_org
from appliance.identity.totp import STEP_SECONDS, code_at, new_secret
from appliance.identity.users import create_user
from appliance.keys.sealing import sealing_private_key
from appliance.pim.model import Policy
from appliance.pim.policies import add_approver, add_eligible, create_role
from appliance.settings import Plane
from tests.conftest import Database, create_org

ROLE = "prod-db-admin"
DEFAULT_POLICY = Policy(
    max_duration_seconds=4 * 3600, approvals_required=2, allow_future_start=True
)


@dataclass
class User:
    id: UUID
    name: str
    password: str
    totp_secret: str


@dataclass
class World:
    """An org with requester alice, approvers bob, carol and erin (via a group), outsider dave."""

    org_id: UUID
    org: str
    users: dict[str, User]
    clock: FrozenClock
    client: Client
    tokens: dict[str, str] = field(default_factory=dict)

    def totp(self, name: str) -> str:
        step = int(self.clock.now.timestamp() // STEP_SECONDS)
        return code_at(self.users[name].totp_secret, step)

    async def login(self, name: str) -> str:
        """Sign `name` in once per test and return the bearer token."""
        if name not in self.tokens:
            user = self.users[name]
            response = await self.client.post(
                f"/o/{self.org}/pim/session",
                json={"username": name, "password": user.password, "totp": self.totp(name)},
                scope_base=source(),
            )
            assert response.status_code == 201, await response.get_data(as_text=True)
            self.tokens[name] = (await response.get_json())["token"]
        return self.tokens[name]

    async def call(self, name: str, method: str, path: str, body: Any = None) -> Any:
        """Call the JSON API as `name`; return the response."""
        token = await self.login(name)
        return await self.client.open(
            f"/o/{self.org}/pim/api/{path}",
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def request(self, name: str = "alice", **overrides: Any) -> dict[str, Any]:
        body = {
            "role": ROLE,
            "duration_seconds": 1800,
            "justification": "rotate the replication password",
            "ticket": "CHG-1234",
        }
        body.update(overrides)
        response = await self.call(name, "POST", "requests", body)
        assert response.status_code == 201, await response.get_data(as_text=True)
        result: dict[str, Any] = await response.get_json()
        return result


def source(address: str | None = None) -> dict[str, Any]:
    address = address or f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    return {"client": (address, 40000)}


def holder() -> tuple[jwk.JWK, dict[str, Any]]:
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    return key, key.export_public(as_dict=True)


@pytest.fixture
def clock() -> FrozenClock:
    # Aligned to the start of a TOTP step, so `advance(30)` always reaches the next one.
    now = datetime.now(UTC).timestamp()
    return FrozenClock(datetime.fromtimestamp(now - now % STEP_SECONDS, UTC))


@pytest.fixture
async def app(database: Database, clock: FrozenClock) -> AsyncIterator[Quart]:
    application = create_app(database.settings(Plane.PIM), clock=clock)
    application.config["PIM_JOBS"] = False
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


def pim_seal_keys(database: Database) -> dict[str, bytes]:
    key = sealing_private_key(database.master_secrets[Plane.PIM], "pim")
    return {"pim": bytes(key.public_key)}


async def make_world(
    database: Database,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
    client: Client,
    *,
    policy: Policy = DEFAULT_POLICY,
) -> World:
    org_id, org = await create_org(superuser)
    users: dict[str, User] = {}
    now = clock.now
    async with superuser.transaction():
        await set_org(superuser, org_id)
        for name in ("alice", "bob", "carol", "dave", "erin"):
            password, totp_secret = secrets.token_urlsafe(12), new_secret()
            user_id = await create_user(
                superuser,
                org_id,
                username=name,
                password=password,
                totp_secret=totp_secret,
                seal_public_keys=pim_seal_keys(database),
                actor="tests",
                now=now,
            )
            users[name] = User(user_id, name, password, totp_secret)
        group_id = await superuser.fetchval(GROUP_INSERT, org_id, "dba-leads")
        await superuser.execute(GROUP_MEMBER_ADD, org_id, group_id, users["erin"].id)
        role_id = await create_role(
            superuser, org_id, name=ROLE, policy=policy, actor="tests", now=now
        )
        await add_eligible(
            superuser,
            org_id,
            role_id,
            actor="tests",
            now=now,
            role_name=ROLE,
            user_id=users["alice"].id,
        )
        for name in ("bob", "carol"):
            await add_approver(
                superuser,
                org_id,
                role_id,
                actor="tests",
                now=now,
                role_name=ROLE,
                user_id=users[name].id,
            )
        await add_approver(
            superuser, org_id, role_id, actor="tests", now=now, role_name=ROLE, group_id=group_id
        )
    return World(org_id, org, users, clock, client)


@pytest.fixture
async def world(
    database: Database, superuser: asyncpg.Connection, clock: FrozenClock, client: Client
) -> World:
    return await make_world(database, superuser, clock, client)


async def audit_events(
    superuser: asyncpg.Connection, org_id: UUID, event_type: str
) -> list[asyncpg.Record]:
    return await superuser.fetch(
        "SELECT actor, subject, outcome, failure_reason, data FROM audit_events "
        "WHERE org_id = $1 AND event_type = $2 ORDER BY seq",
        org_id,
        event_type,
    )
