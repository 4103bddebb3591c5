"""The journal: fsynced appends, MAC chain, corruption detection, cursor."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from appliance.breakglass.journal import Journal, JournalCorrupt

MASTER = secrets.token_bytes(32)


def _journal(folder: Path, master: bytes = MASTER) -> Journal:
    return Journal(folder, master)


def test_entries_survive_reopen(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    first = journal.append("audit", "org-1", {"n": 1})
    journal.append("audit", "org-1", {"n": 2})
    reopened = _journal(tmp_path)
    entries = list(reopened.entries())
    assert [e.body["n"] for e in entries] == [1, 2]
    assert entries[0].event_id == first.event_id
    assert reopened.last_seq == 2
    assert reopened.append("audit", "org-1", {"n": 3}).seq == 3


def test_file_is_private(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.append("audit", "org-1", {})
    assert journal.path.stat().st_mode & 0o077 == 0


def test_altered_line_is_refused(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.append("audit", "org-1", {"subject": "alice"})
    journal.append("audit", "org-1", {"subject": "bob"})
    lines = journal.path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["body"]["subject"] = "mallory"
    lines[0] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    journal.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalCorrupt, match="line 1"):
        list(_journal_entries(tmp_path))


def test_removed_line_is_refused(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    for n in range(3):
        journal.append("audit", "org-1", {"n": n})
    lines = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(JournalCorrupt, match="seq 3, expected 2"):
        list(_journal_entries(tmp_path))


def test_truncated_line_is_refused(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.append("audit", "org-1", {"n": 1})
    journal.path.write_bytes(journal.path.read_bytes()[:-10])
    with pytest.raises(JournalCorrupt, match="truncated"):
        _journal(tmp_path)


def test_other_master_secret_is_refused(tmp_path: Path) -> None:
    _journal(tmp_path).append("audit", "org-1", {"n": 1})
    with pytest.raises(JournalCorrupt, match="fails its MAC"):
        _journal(tmp_path, secrets.token_bytes(32))


def test_garbage_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text("not json\n")
    with pytest.raises(JournalCorrupt, match="not a journal entry"):
        _journal(tmp_path)


def test_cursor_tracks_backlog(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    for n in range(3):
        journal.append("audit", "org-1", {"n": n})
    assert journal.backlog() == 3
    journal.mark_replayed(2)
    assert _journal(tmp_path).replayed_through() == 2
    assert journal.backlog() == 1


def _journal_entries(folder: Path) -> list[object]:
    """Read the journal the way a restarted plane does: opening it verifies every line."""
    return list(Journal(folder, MASTER).entries())
