"""Key rotation: next key published before it signs, retired key kept until its tokens expire."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.db.queries.oidc import ROTATION_TRY_LOCK
from appliance.db.tenancy import set_org
from appliance.keys.rotation import RotationResult, rotate_org, run_rotation_once
from appliance.keys.signing import SigningKeyStore, published_jwks
from appliance.oidc.issuer_keys import AUTH_ROTATION_POLICY
from appliance.oidc.jose import parse_unverified
from appliance.settings import Plane
from tests.conftest import Database
from tests.oidc.conftest import Tenant, tokens_for_user

POLICY = AUTH_ROTATION_POLICY


@pytest.fixture
async def auth_pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database.dsn(Plane.AUTH), min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def store(database: Database) -> SigningKeyStore:
    return SigningKeyStore("auth", database.master_secrets[Plane.AUTH])


async def _rotate(
    pool: asyncpg.Pool,
    store: SigningKeyStore,
    tenant: Tenant,
    now: datetime,
    *,
    force: bool = False,
) -> RotationResult:
    async with pool.acquire() as conn, conn.transaction():
        await set_org(conn, tenant.org_id)
        return await rotate_org(conn, store, tenant.org_id, policy=POLICY, now=now, force=force)


async def _published(pool: asyncpg.Pool, tenant: Tenant, now: datetime) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        await set_org(conn, tenant.org_id)
        document = await published_jwks(conn, tenant.org_id, "auth", now=now)
    return {key["kid"]: key for key in document["keys"]}


async def _signing_kid(client: Client, app: Quart, tenant: Tenant) -> str:
    app.extensions["oidc"].keys.forget(tenant.org_id)
    tokens = await tokens_for_user(client, tenant, prompt="login")
    return str(parse_unverified(tokens["access_token"])[0]["kid"])


async def test_schedule_publishes_next_before_it_signs(
    client: Client, app: Quart, tenant: Tenant, auth_pool: asyncpg.Pool, store: SigningKeyStore
) -> None:
    first_kid = await _signing_kid(client, app, tenant)
    now = tenant.clock.now
    result = await _rotate(auth_pool, store, tenant, now)
    assert result.activated is None
    assert len(result.created_next) == 1
    next_kid = result.created_next[0]
    assert set(await _published(auth_pool, tenant, now)) == {first_kid, next_kid}
    assert await _signing_kid(client, app, tenant) == first_kid


async def test_schedule_waits_until_due_and_lead_elapsed(
    client: Client, app: Quart, tenant: Tenant, auth_pool: asyncpg.Pool, store: SigningKeyStore
) -> None:
    first_kid = await _signing_kid(client, app, tenant)
    start = tenant.clock.now
    next_kid = (await _rotate(auth_pool, store, tenant, start)).created_next[0]
    assert not (await _rotate(auth_pool, store, tenant, start + timedelta(days=2))).changed
    due = start + POLICY.rotate_after + timedelta(seconds=1)
    result = await _rotate(auth_pool, store, tenant, due)
    assert result.retired == first_kid
    assert result.activated == next_kid
    published = await _published(auth_pool, tenant, due)
    assert set(published) == {first_kid, next_kid, result.created_next[0]}
    after_overlap = due + POLICY.retired_overlap + timedelta(seconds=1)
    assert first_kid not in await _published(auth_pool, tenant, after_overlap)


async def test_retired_key_outlives_its_tokens() -> None:
    from appliance.oidc.claims import CLOCK_SKEW_SECONDS
    from appliance.oidc.issuer_keys import ACTIVE_KEY_CACHE_SECONDS, MAX_TOKEN_LIFETIME_SECONDS

    needed = MAX_TOKEN_LIFETIME_SECONDS + ACTIVE_KEY_CACHE_SECONDS + CLOCK_SKEW_SECONDS
    assert POLICY.retired_overlap.total_seconds() >= needed


async def test_token_of_retired_key_still_verifies(
    client: Client, app: Quart, tenant: Tenant, auth_pool: asyncpg.Pool, store: SigningKeyStore
) -> None:
    tokens = await tokens_for_user(client, tenant)
    old_kid = parse_unverified(tokens["access_token"])[0]["kid"]
    result = await _rotate(auth_pool, store, tenant, tenant.clock.now, force=True)
    assert result.retired == old_kid
    new_kid = await _signing_kid(client, app, tenant)
    assert new_kid == result.activated
    response = await client.get(
        f"/o/{tenant.org}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200


async def test_job_lock_lets_one_runner_through(
    tenant: Tenant, auth_pool: asyncpg.Pool, store: SigningKeyStore, database: Database
) -> None:
    holder = await asyncpg.connect(database.dsn(Plane.AUTH))
    try:
        async with holder.transaction():
            assert await holder.fetchval(ROTATION_TRY_LOCK, "auth") is True
            assert (
                await run_rotation_once(auth_pool, store, policy=POLICY, now=tenant.clock.now)
                is None
            )
        results = await run_rotation_once(auth_pool, store, policy=POLICY, now=tenant.clock.now)
        assert results is not None
    finally:
        await holder.close()


async def test_cli_rotates_one_org(
    client: Client, app: Quart, tenant: Tenant, database: Database, tmp_path: Path
) -> None:
    first_kid = await _signing_kid(client, app, tenant)
    secret_file = tmp_path / "auth-master"
    secret_file.write_bytes(database.master_secrets[Plane.AUTH])
    env = {
        "PATH": "/usr/bin:/bin",
        "APPLIANCE_AUTH_DATABASE_URL": database.dsn(Plane.AUTH),
        "APPLIANCE_AUTH_MASTER_SECRET_FILE": str(secret_file),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "keys",
        "rotate",
        "--plane",
        "auth",
        "--org",
        tenant.org,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert result["retired"] == first_kid
    assert await _signing_kid(client, app, tenant) == result["activated"]


async def test_cli_unknown_org_fails(database: Database, tmp_path: Path) -> None:
    secret_file = tmp_path / "auth-master"
    secret_file.write_bytes(database.master_secrets[Plane.AUTH])
    env = {
        "PATH": "/usr/bin:/bin",
        "APPLIANCE_AUTH_DATABASE_URL": database.dsn(Plane.AUTH),
        "APPLIANCE_AUTH_MASTER_SECRET_FILE": str(secret_file),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "keys",
        "rotate",
        "--plane",
        "auth",
        "--org",
        "no-such-org",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 1
    assert b"org 'no-such-org' not found" in stderr
