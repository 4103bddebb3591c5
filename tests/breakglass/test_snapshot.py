"""The sealed snapshot: contents, encryption, atomic file, corruption."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from appliance.breakglass.snapshot import SnapshotCorrupt, SnapshotFile, read_snapshot_from_db
from appliance.keys.signing import SigningKeyStore
from appliance.settings import Plane
from tests.breakglass.conftest import Account
from tests.conftest import Database


async def _snapshot_of(database: Database) -> object:
    conn = await asyncpg.connect(database.dsn(Plane.BREAKGLASS))
    try:
        store = SigningKeyStore("breakglass", database.master_secrets[Plane.BREAKGLASS])
        return await read_snapshot_from_db(conn, store, now=datetime.now(UTC))
    finally:
        await conn.close()


async def test_snapshot_contains_account_and_key(database: Database, account: Account) -> None:
    snapshot = await _snapshot_of(database)
    org = snapshot.orgs[account.org]  # type: ignore[attr-defined]
    stored = org.accounts["oncall"]
    assert stored.passphrase_hash.startswith("$argon2id$")
    assert stored.max_ttl_seconds == 3600
    assert org.signing_key is not None
    assert [k["kid"] for k in org.jwks["keys"]] == [org.signing_key.kid]


async def test_file_round_trip_and_secrecy(
    database: Database, account: Account, tmp_path: Path
) -> None:
    snapshot = await _snapshot_of(database)
    file = SnapshotFile(tmp_path, database.master_secrets[Plane.BREAKGLASS])
    file.write(snapshot)  # type: ignore[arg-type]
    assert file.path.stat().st_mode & 0o077 == 0
    raw = file.path.read_bytes()
    assert b"argon2id" not in raw
    assert account.org.encode() not in raw
    loaded = file.read()
    assert loaded is not None
    assert loaded.orgs[account.org].accounts["oncall"].name == "oncall"


async def test_flipped_byte_is_refused(
    database: Database, account: Account, tmp_path: Path
) -> None:
    file = SnapshotFile(tmp_path, database.master_secrets[Plane.BREAKGLASS])
    file.write(await _snapshot_of(database))  # type: ignore[arg-type]
    raw = bytearray(file.path.read_bytes())
    raw[-5] ^= 0x01
    file.path.write_bytes(bytes(raw))
    with pytest.raises(SnapshotCorrupt, match="fails authentication"):
        file.read()


async def test_other_master_secret_is_refused(
    database: Database, account: Account, tmp_path: Path
) -> None:
    SnapshotFile(tmp_path, database.master_secrets[Plane.BREAKGLASS]).write(
        await _snapshot_of(database)
    )  # type: ignore[arg-type]
    with pytest.raises(SnapshotCorrupt):
        SnapshotFile(tmp_path, secrets.token_bytes(32)).read()


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "snapshot.bin").write_bytes(b"hello")
    with pytest.raises(SnapshotCorrupt, match="not a break-glass snapshot"):
        SnapshotFile(tmp_path, secrets.token_bytes(32)).read()


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert SnapshotFile(tmp_path, secrets.token_bytes(32)).read() is None
