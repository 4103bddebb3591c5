"""Fixtures for the admin plane: a running app, orgs with users in each admin role."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.admin.service import PLANE, client_token
from appliance.admin.users import bind_role, create_user_with_totp
from appliance.app import create_app
from appliance.clock import FrozenClock
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.db.tenancy import set_org
from appliance.identity.sessions import create_session
from appliance.identity.totp import STEP_SECONDS, code_at
from appliance.keys.sealing import sealing_private_key
from appliance.settings import Plane
from tests.conftest import Database, create_org

PASSWORD = "correct horse battery staple"


@dataclass
class AdminUser:
    org_id: UUID
    org: str
    username: str
    user_id: UUID
    totp_secret: str
    roles: tuple[str, ...]
    clock: FrozenClock
    token: str = ""

    def totp(self, steps_ahead: int = 0) -> str:
        step = int(self.clock.now.timestamp() // STEP_SECONDS) + steps_ahead
        return code_at(self.totp_secret, step)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Tenant:
    org_id: UUID
    org: str
    users: dict[str, AdminUser] = field(default_factory=dict)


def seal_public_keys(database: Database) -> dict[str, bytes]:
    return {
        plane.value: bytes(
            sealing_private_key(database.master_secrets[plane], plane.value).public_key
        )
        for plane in Plane
    }


async def publish_seal_keys(database: Database, conn: asyncpg.Connection) -> None:
    """What each plane does at start: publish its sealing public key."""
    for plane, public_key in seal_public_keys(database).items():
        await conn.execute(SEAL_KEY_UPSERT, plane, public_key)


async def add_user(
    database: Database,
    conn: asyncpg.Connection,
    clock: FrozenClock,
    org_id: UUID,
    org: str,
    username: str,
    roles: tuple[str, ...],
    *,
    with_session: bool = True,
) -> AdminUser:
    keys = seal_public_keys(database)
    async with conn.transaction():
        await set_org(conn, org_id)
        user_id, secret = await create_user_with_totp(
            conn,
            org_id,
            username=username,
            password=PASSWORD,
            display_name=username,
            email="",
            public_keys={p: keys[p] for p in ("admin", "auth", "pim")},
            actor="tests",
            now=clock.now,
        )
        for role in roles:
            await bind_role(
                conn,
                org_id,
                user_id=user_id,
                username=username,
                role=role,
                actor="tests",
                now=clock.now,
            )
        token = ""
        if with_session:
            raw, _ = await create_session(
                conn, org_id, user_id, plane=PLANE, now=clock.now, lifetime_seconds=15 * 60
            )
            token = client_token(org, raw)
    return AdminUser(org_id, org, username, user_id, secret, roles, clock, token)


async def make_tenant(
    database: Database, conn: asyncpg.Connection, clock: FrozenClock, name: str | None = None
) -> Tenant:
    org_id, org = await create_org(conn, name)
    tenant = Tenant(org_id, org)
    role_sets: dict[str, tuple[str, ...]] = {
        "admin": ("org-admin",),
        "auditor": ("security-auditor",),
        "policy": ("pim-policy-manager",),
        "nobody": (),
    }
    for username, roles in role_sets.items():
        tenant.users[username] = await add_user(database, conn, clock, org_id, org, username, roles)
    return tenant


@pytest.fixture
def clock() -> FrozenClock:
    now = datetime.now(UTC).timestamp()
    return FrozenClock(datetime.fromtimestamp(now - now % STEP_SECONDS, UTC))


@pytest.fixture
async def app(
    database: Database, clock: FrozenClock, superuser: asyncpg.Connection
) -> AsyncIterator[Quart]:
    await publish_seal_keys(database, superuser)
    application = create_app(database.settings(Plane.ADMIN), clock=clock)
    async with application.test_app():
        yield application


@pytest.fixture(scope="module")
async def seal_keys_published(database: Database) -> None:
    conn = await asyncpg.connect(database.superuser_dsn)
    try:
        await publish_seal_keys(database, conn)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def fuzz_tenant(database: Database) -> Tenant:
    """A tenant whose sessions use the system clock (for apps on the real clock)."""
    conn = await asyncpg.connect(database.superuser_dsn)
    try:
        return await make_tenant(database, conn, SystemClock())
    finally:
        await conn.close()


class SystemClock(FrozenClock):
    """A clock that follows real time, with the `FrozenClock` interface the fixtures use."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))

    def __call__(self) -> datetime:
        self.now = datetime.now(UTC)
        return self.now


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture
async def tenant(database: Database, superuser: asyncpg.Connection, clock: FrozenClock) -> Tenant:
    return await make_tenant(database, superuser, clock)


@pytest.fixture
async def other_tenant(
    database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> Tenant:
    return await make_tenant(database, superuser, clock)


def new_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def call(
    client: Client, method: str, path: str, user: AdminUser | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = dict(kwargs.pop("headers", {}))
    if user is not None:
        headers.update(user.headers)
    response = await client.open(path, method=method, headers=headers, **kwargs)
    if response.mimetype == "application/json":
        return response.status_code, await response.get_json()
    return response.status_code, await response.get_data(as_text=True)
