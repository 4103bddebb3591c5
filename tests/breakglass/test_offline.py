"""Offline activation rules: TOTP once, lockout, stale snapshot cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from appliance.breakglass.journal import Journal
from appliance.breakglass.offline import OfflineActivator
from appliance.breakglass.online import RecordedFailure
from appliance.breakglass.request import parse_activation_request
from appliance.breakglass.snapshot import Snapshot, read_snapshot_from_db
from appliance.keys.sealing import sealing_private_key
from appliance.keys.signing import SigningKeyStore
from appliance.settings import Plane
from tests.breakglass.conftest import Account, activation_body
from tests.conftest import Database


async def _snapshot(database: Database, now: datetime) -> Snapshot:
    conn = await asyncpg.connect(database.dsn(Plane.BREAKGLASS))
    try:
        store = SigningKeyStore("breakglass", database.master_secrets[Plane.BREAKGLASS])
        return await read_snapshot_from_db(conn, store, now=now)
    finally:
        await conn.close()


def _activator(database: Database, folder: Path, snapshot: Snapshot) -> OfflineActivator:
    master = database.master_secrets[Plane.BREAKGLASS]
    journal = Journal(folder, master)
    activator = OfflineActivator(
        journal=journal,
        master_secret=master,
        seal_key=sealing_private_key(master, "breakglass"),
        issuer_for=lambda org: f"https://appliance.test/o/{org}/breakglass",
        max_age_seconds=3600,
        stale_ttl_seconds=300,
    )
    activator.install(snapshot, list(journal.entries()))
    return activator


async def test_code_works_once_offline(
    database: Database, account: Account, tmp_path: Path
) -> None:
    now = account.clock.now
    activator = _activator(database, tmp_path, await _snapshot(database, now))
    request = parse_activation_request(activation_body(account))
    activation = await activator.activate(account.org, request, source_hash="s", now=now)
    assert activation.degraded is True
    with pytest.raises(RecordedFailure) as failure:
        await activator.activate(account.org, request, source_hash="s", now=now)
    assert failure.value.reason == "totp_replayed"


async def test_used_code_stays_used_after_restart(
    database: Database, account: Account, tmp_path: Path
) -> None:
    now = account.clock.now
    snapshot = await _snapshot(database, now)
    request = parse_activation_request(activation_body(account))
    await _activator(database, tmp_path, snapshot).activate(
        account.org, request, source_hash="s", now=now
    )
    restarted = _activator(database, tmp_path, snapshot)
    with pytest.raises(RecordedFailure) as failure:
        await restarted.activate(account.org, request, source_hash="s", now=now)
    assert failure.value.reason == "totp_replayed"


async def test_lockout_offline_survives_restart(
    database: Database, account: Account, tmp_path: Path
) -> None:
    now = account.clock.now
    snapshot = await _snapshot(database, now)
    activator = _activator(database, tmp_path, snapshot)
    wrong = parse_activation_request(activation_body(account, passphrase="wrong"))
    for _ in range(5):
        with pytest.raises(RecordedFailure):
            await activator.activate(account.org, wrong, source_hash="s", now=now)
    restarted = _activator(database, tmp_path, snapshot)
    right = parse_activation_request(activation_body(account))
    with pytest.raises(RecordedFailure) as failure:
        await restarted.activate(account.org, right, source_hash="s", now=now)
    assert failure.value.reason == "account_locked"


async def test_stale_snapshot_caps_lifetime(
    database: Database, account: Account, tmp_path: Path
) -> None:
    now = account.clock.now
    snapshot = await _snapshot(database, now - timedelta(hours=2))
    activator = _activator(database, tmp_path, snapshot)
    request = parse_activation_request(activation_body(account, ttl_seconds=1800))
    activation = await activator.activate(account.org, request, source_hash="s", now=now)
    assert activation.ttl_seconds == 300
    assert activation.ttl_capped is True
    entry = list(activator.journal.entries())[-1]
    assert entry.body["event"]["data"]["snapshot_stale"] is True
    assert entry.body["event"]["data"]["mode"] == "degraded"


async def test_fresh_snapshot_keeps_requested_lifetime(
    database: Database, account: Account, tmp_path: Path
) -> None:
    now = account.clock.now
    activator = _activator(
        database, tmp_path, await _snapshot(database, now - timedelta(minutes=5))
    )
    request = parse_activation_request(activation_body(account, ttl_seconds=1800))
    activation = await activator.activate(account.org, request, source_hash="s", now=now)
    assert activation.ttl_seconds == 1800


async def test_unknown_org_offline(database: Database, account: Account, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    activator = _activator(database, tmp_path, await _snapshot(database, now))
    request = parse_activation_request(activation_body(account))
    with pytest.raises(KeyError):
        await activator.activate("no-such-org", request, source_hash="s", now=now)
