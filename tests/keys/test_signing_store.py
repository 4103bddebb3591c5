"""Signing keys in the database: encrypted at rest, isolated per plane."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest
from jwcrypto import jwk

from appliance.db.queries.orgs import SET_ORG_CONTEXT
from appliance.keys.signing import SigningKeyStore, published_jwks
from appliance.settings import Plane
from tests.conftest import Database


async def _create_active_key(database: Database, org_id: UUID, plane: Plane) -> jwk.JWK:
    conn = await asyncpg.connect(database.dsn(plane))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_id))
            store = SigningKeyStore(plane.value, database.master_secrets[plane])
            key = await store.active(conn, org_id, now=datetime.now(UTC))
        return key.key
    finally:
        await conn.close()


async def test_raw_rows_hold_no_private_key_material(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    private = await _create_active_key(database, org_id, Plane.BREAKGLASS)
    d_value = private.export_private(as_dict=True)["d"]
    row = await superuser.fetchrow("SELECT * FROM signing_keys WHERE org_id = $1", org_id)
    assert row is not None
    public = json.loads(row["public_jwk"])
    assert "d" not in public
    raw = b"".join(
        value if isinstance(value, bytes) else str(value).encode() for value in row.values()
    )
    assert d_value.encode() not in raw
    assert b'"d"' not in raw


async def test_active_key_is_created_once(database: Database, org: tuple[UUID, str]) -> None:
    org_id, _ = org
    first = await _create_active_key(database, org_id, Plane.BREAKGLASS)
    second = await _create_active_key(database, org_id, Plane.BREAKGLASS)
    assert first.thumbprint() == second.thumbprint()


async def test_plane_cannot_read_other_plane_keys(
    database: Database, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await _create_active_key(database, org_id, Plane.BREAKGLASS)
    conn = await asyncpg.connect(database.dsn(Plane.AUTH))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_id))
            rows = await conn.fetch("SELECT kid FROM signing_keys WHERE plane = 'breakglass'")
        assert rows == []
    finally:
        await conn.close()


async def test_admin_cannot_read_private_key_columns(
    database: Database, org: tuple[UUID, str]
) -> None:
    org_id, _ = org
    await _create_active_key(database, org_id, Plane.BREAKGLASS)
    conn = await asyncpg.connect(database.dsn(Plane.ADMIN))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_id))
            assert await conn.fetchval("SELECT count(kid) FROM signing_keys") == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT private_key_ciphertext FROM signing_keys")
    finally:
        await conn.close()


async def test_jwks_publishes_public_keys_only(database: Database, org: tuple[UUID, str]) -> None:
    org_id, _ = org
    private = await _create_active_key(database, org_id, Plane.BREAKGLASS)
    conn = await asyncpg.connect(database.dsn(Plane.BREAKGLASS))
    try:
        async with conn.transaction():
            await conn.execute(SET_ORG_CONTEXT, str(org_id))
            jwks = await published_jwks(conn, org_id, "breakglass", now=datetime.now(UTC))
    finally:
        await conn.close()
    assert len(jwks["keys"]) == 1
    published = jwks["keys"][0]
    assert "d" not in published
    assert published["alg"] == "ES256"
    assert jwk.JWK(**published).thumbprint() == private.thumbprint()
