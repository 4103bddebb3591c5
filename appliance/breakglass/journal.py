"""The break-glass journal: a local, append-only, HMAC-chained log.

When PostgreSQL cannot take an audit event or an alert, the break-glass
plane writes it here first and answers only after `fsync` returns, so every
acknowledged event is on disk. Each line is one JSON entry whose `mac` is
HMAC-SHA256, under a key derived from the break-glass master secret, over
the previous entry's `mac` and the entry itself. Altering, removing or
reordering a line breaks every later `mac`, and a reader without the master
secret cannot forge a valid chain.

Replay into PostgreSQL is tracked by a cursor file (the sequence number up to
which entries were replayed). A replay that is killed half-way leaves the
cursor behind, so the next replay sees some entries again; replay is
idempotent by each entry's stable `event_id`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.keys.envelope import derive_key

GENESIS_MAC = "0" * 64
JOURNAL_FILE = "journal.jsonl"
CURSOR_FILE = "journal.cursor"
# A line longer than this is not one we wrote.
MAX_LINE_BYTES = 64 * 1024


class JournalCorrupt(Exception):
    """The journal does not verify; the message names the line and the check."""


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    kind: str  # "audit" or "alert"
    org_id: str
    event_id: str
    body: dict[str, Any]
    mac: str = ""

    def canonical(self, prev_mac: str) -> bytes:
        content = {
            "seq": self.seq,
            "kind": self.kind,
            "org_id": self.org_id,
            "event_id": self.event_id,
            "body": self.body,
            "prev": prev_mac,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Journal:
    """The journal file in `folder`, opened for appending."""

    folder: Path
    master_secret: bytes = field(repr=False)
    _key: bytes = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _last_seq: int = field(init=False, default=0)
    _last_mac: str = field(init=False, default=GENESIS_MAC)

    def __post_init__(self) -> None:
        self._key = derive_key(self.master_secret, plane="breakglass", purpose="journal-mac")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for entry in self.entries():
            self._last_seq, self._last_mac = entry.seq, entry.mac

    @property
    def path(self) -> Path:
        return self.folder / JOURNAL_FILE

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def _mac(self, entry: JournalEntry, prev_mac: str) -> str:
        return hmac.new(self._key, entry.canonical(prev_mac), hashlib.sha256).hexdigest()

    def append(
        self, kind: str, org_id: str, body: dict[str, Any], *, event_id: str | None = None
    ) -> JournalEntry:
        """Append one entry and fsync it before returning. Blocking: call from a thread."""
        with self._lock:
            entry = JournalEntry(
                seq=self._last_seq + 1,
                kind=kind,
                org_id=org_id,
                event_id=event_id or str(uuid.uuid4()),
                body=body,
            )
            mac = self._mac(entry, self._last_mac)
            line = json.dumps(
                {
                    "seq": entry.seq,
                    "kind": entry.kind,
                    "org_id": entry.org_id,
                    "event_id": entry.event_id,
                    "body": entry.body,
                    "mac": mac,
                },
                sort_keys=True,
                separators=(",", ":"),
            )
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_directory(self.folder)
            self._last_seq, self._last_mac = entry.seq, mac
            return JournalEntry(entry.seq, kind, org_id, entry.event_id, body, mac)

    def entries(self) -> Iterator[JournalEntry]:
        """Read and verify every entry; raise `JournalCorrupt` at the first bad line."""
        if not self.path.exists():
            return
        prev_mac = GENESIS_MAC
        expected_seq = 1
        with self.path.open("rb") as file:
            for number, raw in enumerate(file, start=1):
                if len(raw) > MAX_LINE_BYTES or not raw.endswith(b"\n"):
                    raise JournalCorrupt(f"{self.path}: line {number} is truncated or oversized")
                try:
                    data = json.loads(raw)
                    entry = JournalEntry(
                        seq=int(data["seq"]),
                        kind=str(data["kind"]),
                        org_id=str(data["org_id"]),
                        event_id=str(data["event_id"]),
                        body=dict(data["body"]),
                        mac=str(data["mac"]),
                    )
                except (ValueError, KeyError, TypeError) as error:
                    raise JournalCorrupt(
                        f"{self.path}: line {number} is not a journal entry ({error})"
                    ) from None
                if entry.seq != expected_seq:
                    raise JournalCorrupt(
                        f"{self.path}: line {number} has seq {entry.seq}, expected {expected_seq}"
                    )
                if not hmac.compare_digest(entry.mac, self._mac(entry, prev_mac)):
                    raise JournalCorrupt(
                        f"{self.path}: line {number} (seq {entry.seq}) fails its MAC: "
                        "the journal was altered or written with another master secret"
                    )
                yield entry
                prev_mac = entry.mac
                expected_seq += 1

    def replayed_through(self) -> int:
        """Sequence number up to which entries are known to be replayed."""
        path = self.folder / CURSOR_FILE
        try:
            return int(path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            raise JournalCorrupt(f"{path} does not contain a sequence number") from None

    def mark_replayed(self, seq: int) -> None:
        """Move the replay cursor to `seq` atomically."""
        path = self.folder / CURSOR_FILE
        temporary = path.with_name(f".{CURSOR_FILE}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{seq}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _fsync_directory(self.folder)

    def backlog(self) -> int:
        return max(0, self._last_seq - self.replayed_through())


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
