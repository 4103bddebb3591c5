"""Fixtures for the break-glass plane: an org, an account, a running app."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
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
from appliance.demo import create_breakglass_account
from appliance.identity.totp import STEP_SECONDS, code_at, new_secret
from appliance.keys.sealing import sealing_private_key
from appliance.settings import Plane
from tests.conftest import Database, create_org


@dataclass
class Account:
    org_id: UUID
    org: str
    name: str
    passphrase: str
    totp_secret: str
    clock: FrozenClock

    def totp(self, steps_ahead: int = 0) -> str:
        step = int(self.clock.now.timestamp() // STEP_SECONDS) + steps_ahead
        return code_at(self.totp_secret, step)


async def make_account(
    database: Database,
    superuser: asyncpg.Connection,
    clock: FrozenClock,
    *,
    default_ttl: int = 900,
    max_ttl: int = 3600,
) -> Account:
    org_id, org_name = await create_org(superuser)
    passphrase = secrets.token_urlsafe(16)
    totp_secret = new_secret()
    seal_key = sealing_private_key(database.master_secrets[Plane.BREAKGLASS], "breakglass")
    async with superuser.transaction():
        await create_breakglass_account(
            superuser,
            org_id,
            name="oncall",
            role="breakglass-admin",
            passphrase=passphrase,
            totp_secret=totp_secret,
            seal_public_key=bytes(seal_key.public_key),
            default_ttl_seconds=default_ttl,
            max_ttl_seconds=max_ttl,
            actor="tests",
        )
    return Account(org_id, org_name, "oncall", passphrase, totp_secret, clock)


@pytest.fixture
def clock() -> FrozenClock:
    # Aligned to the start of a TOTP step, so `advance(30)` always reaches the next one.
    now = datetime.now(UTC).timestamp()
    return FrozenClock(datetime.fromtimestamp(now - now % STEP_SECONDS, UTC))


@pytest.fixture
async def app(database: Database, clock: FrozenClock) -> AsyncIterator[Quart]:
    application = create_app(database.settings(Plane.BREAKGLASS), clock=clock)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture
async def account(database: Database, superuser: asyncpg.Connection, clock: FrozenClock) -> Account:
    return await make_account(database, superuser, clock)


def holder() -> tuple[jwk.JWK, dict[str, Any]]:
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    return key, key.export_public(as_dict=True)


def activation_body(account: Account, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": account.name,
        "passphrase": account.passphrase,
        "totp": account.totp(),
        "incident": "INC-4711",
        "reason": "primary IdP down; need to restart the auth cluster",
        "holder_jwk": holder()[1],
    }
    body.update(overrides)
    return body


def source(address: str | None = None) -> dict[str, Any]:
    """A scope that sets the client address, so rate limits do not leak between tests."""
    address = address or f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    return {"client": (address, 40000)}
