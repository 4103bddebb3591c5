"""Journal replay: in order, exactly once, also when interrupted."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from appliance.breakglass.journal import Journal
from appliance.breakglass.replay import replay_journal
from appliance.db.pool import create_plane_pool
from appliance.settings import Plane
from tests.breakglass.conftest import Account
from tests.conftest import Database


def _write_entries(journal: Journal, org_id: UUID, account_id: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        entry = journal.append(
            "audit",
            str(org_id),
            {
                "org": "x",
                "event": {
                    "event_type": "breakglass.activated",
                    "plane": "breakglass",
                    "actor": "oncall",
                    "subject": "oncall",
                    "outcome": "success",
                    "occurred_at": datetime.now(UTC).timestamp(),
                    "failure_reason": None,
                    "source": "s",
                    "data": {"n": n, "mode": "degraded"},
                },
                "effects": {
                    "account": "oncall",
                    "account_id": account_id,
                    "last_totp_step": 1000 + n,
                    "failed_attempts": 0,
                    "locked_until": None,
                    "activated_at": datetime.now(UTC).timestamp(),
                },
            },
        )
        ids.append(entry.event_id)
    return ids


async def _replayed(superuser: asyncpg.Connection, org_id: UUID) -> list[int]:
    rows = await superuser.fetch(
        "SELECT data FROM audit_events "
        "WHERE org_id = $1 AND event_type = 'breakglass.activated' ORDER BY seq",
        org_id,
    )
    import json

    return [json.loads(r["data"])["n"] for r in rows]


async def test_interrupted_replay_applies_each_entry_once(
    database: Database,
    superuser: asyncpg.Connection,
    account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account_id = str(
        await superuser.fetchval(
            "SELECT id FROM breakglass_accounts WHERE org_id = $1", account.org_id
        )
    )
    journal = Journal(tmp_path, secrets.token_bytes(32))
    _write_entries(journal, account.org_id, account_id, 3)
    pool = await create_plane_pool(database.plane_settings(Plane.BREAKGLASS))
    try:
        real_mark = journal.mark_replayed
        calls = {"n": 0}

        def crash_after_first_commit(seq: int) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError("simulated crash between commit and cursor write")
            real_mark(seq)

        monkeypatch.setattr(journal, "mark_replayed", crash_after_first_commit)
        with pytest.raises(OSError, match="simulated crash"):
            await replay_journal(pool, journal)
        # The second entry is committed, but the cursor still says 1.
        assert journal.replayed_through() == 1
        monkeypatch.setattr(journal, "mark_replayed", real_mark)
        applied = (await replay_journal(pool, journal)).applied
    finally:
        await pool.close()
    assert applied == 1
    assert await _replayed(superuser, account.org_id) == [0, 1, 2]
    assert journal.backlog() == 0
    step = await superuser.fetchval(
        "SELECT last_totp_step FROM breakglass_accounts WHERE id = $1", UUID(account_id)
    )
    assert step == 1002


async def test_replay_twice_is_a_no_op(
    database: Database, superuser: asyncpg.Connection, account: Account, tmp_path: Path
) -> None:
    account_id = str(
        await superuser.fetchval(
            "SELECT id FROM breakglass_accounts WHERE org_id = $1", account.org_id
        )
    )
    journal = Journal(tmp_path, secrets.token_bytes(32))
    _write_entries(journal, account.org_id, account_id, 2)
    pool = await create_plane_pool(database.plane_settings(Plane.BREAKGLASS))
    try:
        assert (await replay_journal(pool, journal)).applied == 2
        journal.mark_replayed(0)  # as if the cursor file were lost
        assert (await replay_journal(pool, journal)).applied == 0
    finally:
        await pool.close()
    assert await _replayed(superuser, account.org_id) == [0, 1]
