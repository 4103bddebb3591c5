"""The sealed snapshot: what activation needs when PostgreSQL is unreachable.

It contains, per org, the break-glass accounts (passphrase hashes, TOTP seeds
still sealed to the plane's X25519 key, custodians, lifetimes, lock state),
the active signing key (still AES-GCM encrypted under the plane's key) and the
published JWKS. The whole document is encrypted again with AES-256-GCM under
a key derived from the break-glass master secret, and written atomically
(temporary file, fsync, rename, directory fsync), so a reader finds the old
snapshot or the new one, never half of one.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.db.queries.breakglass import (
    ACCOUNT_EXISTS,
    ACCOUNTS_FOR_SNAPSHOT,
    CUSTODIANS_OF_ORG,
)
from appliance.db.queries.breakglass_alerts import ALERT_TARGETS_OF_ORG
from appliance.db.queries.keys import SIGNING_KEY_ACTIVE
from appliance.db.queries.orgs import ORG_LIST
from appliance.db.tenancy import set_org
from appliance.keys.envelope import derive_key
from appliance.keys.signing import SigningKeyStore, published_jwks

SNAPSHOT_FILE = "snapshot.bin"
MAGIC = b"APPLIANCE-BREAKGLASS-SNAPSHOT-1\n"
AAD = b"appliance breakglass snapshot v1"
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024


class SnapshotCorrupt(Exception):
    """The snapshot file cannot be read, decrypted or parsed."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass
class Custodian:
    position: int
    name: str
    totp_sealed: str
    last_totp_step: int


@dataclass
class Account:
    id: str
    name: str
    role: str
    passphrase_hash: str
    totp_sealed: str
    default_ttl_seconds: int
    max_ttl_seconds: int
    disabled: bool
    failed_attempts: int
    locked_until: float | None
    last_totp_step: int
    custodians_required: int
    custodians: list[Custodian] = field(default_factory=list)


@dataclass
class SealedKey:
    kid: str
    alg: str
    nonce: str
    ciphertext: str


@dataclass
class Org:
    id: str
    name: str
    accounts: dict[str, Account]
    signing_key: SealedKey | None
    jwks: dict[str, Any]
    # Enabled alert targets: id, url, payload_format and the sealed secret in hex.
    alert_targets: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Snapshot:
    taken_at: float
    orgs: dict[str, Org]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Snapshot:
        data = json.loads(raw)
        orgs = {}
        for name, org in data["orgs"].items():
            accounts = {
                account_name: Account(
                    **{k: v for k, v in account.items() if k != "custodians"},
                    custodians=[Custodian(**c) for c in account["custodians"]],
                )
                for account_name, account in org["accounts"].items()
            }
            key = SealedKey(**org["signing_key"]) if org["signing_key"] else None
            orgs[name] = Org(
                org["id"], org["name"], accounts, key, org["jwks"], org.get("alert_targets", [])
            )
        return cls(float(data["taken_at"]), orgs)


async def read_snapshot_from_db(
    conn: asyncpg.Connection, keys: SigningKeyStore, *, now: datetime
) -> Snapshot:
    """Read every org's break-glass state in one repeatable-read transaction.

    Creates an org's first break-glass signing key if it has none, so that an
    org can activate from the snapshot even before its first online activation.
    """
    # Keys are created first, each in a read-committed transaction: inside the
    # repeatable-read snapshot below, a key created concurrently by another
    # transaction would stay invisible, and a second one would be created.
    for org_row in await conn.fetch(ORG_LIST):
        async with conn.transaction():
            await set_org(conn, org_row["id"])
            if await conn.fetchval(ACCOUNT_EXISTS, org_row["id"]):
                await keys.active(conn, org_row["id"], now=now)
    orgs: dict[str, Org] = {}
    async with conn.transaction(isolation="repeatable_read"):
        for org_row in await conn.fetch(ORG_LIST):
            org_id = org_row["id"]
            await set_org(conn, org_id)
            custodians: dict[Any, list[Custodian]] = {}
            for row in await conn.fetch(CUSTODIANS_OF_ORG, org_id):
                custodians.setdefault(row["account_id"], []).append(
                    Custodian(
                        row["position"],
                        row["name"],
                        _b64(bytes(row["totp_secret_sealed"])),
                        row["last_totp_step"],
                    )
                )
            accounts = {}
            for row in await conn.fetch(ACCOUNTS_FOR_SNAPSHOT, org_id):
                accounts[row["name"]] = Account(
                    id=str(row["id"]),
                    name=row["name"],
                    role=row["role"],
                    passphrase_hash=row["passphrase_hash"],
                    totp_sealed=_b64(bytes(row["totp_secret_sealed"])),
                    default_ttl_seconds=row["default_ttl_seconds"],
                    max_ttl_seconds=row["max_ttl_seconds"],
                    disabled=row["disabled"],
                    failed_attempts=row["failed_attempts"],
                    locked_until=row["locked_until"].timestamp() if row["locked_until"] else None,
                    last_totp_step=row["last_totp_step"],
                    custodians_required=row["custodians_required"],
                    custodians=custodians.get(row["id"], []),
                )
            signing_key = None
            if accounts:
                key_row = await conn.fetchrow(SIGNING_KEY_ACTIVE, org_id, keys.plane)
                if key_row is not None:
                    signing_key = SealedKey(
                        kid=key_row["kid"],
                        alg=key_row["alg"],
                        nonce=_b64(bytes(key_row["private_key_nonce"])),
                        ciphertext=_b64(bytes(key_row["private_key_ciphertext"])),
                    )
            jwks = await published_jwks(conn, org_id, keys.plane, now=now)
            targets = [
                {
                    "id": str(row["id"]),
                    "url": row["url"],
                    "payload_format": row["payload_format"],
                    "secret_sealed": bytes(row["secret_sealed"]).hex(),
                }
                for row in await conn.fetch(ALERT_TARGETS_OF_ORG, org_id)
            ]
            orgs[org_row["name"]] = Org(
                str(org_id), org_row["name"], accounts, signing_key, jwks, targets
            )
    return Snapshot(taken_at=now.timestamp(), orgs=orgs)


class SnapshotFile:
    """The encrypted snapshot at `<folder>/snapshot.bin`."""

    def __init__(self, folder: Path, master_secret: bytes) -> None:
        self.path = folder / SNAPSHOT_FILE
        self._key = derive_key(master_secret, plane="breakglass", purpose="snapshot-encryption")

    def write(self, snapshot: Snapshot) -> None:
        """Encrypt and replace the file atomically. Blocking: call from a thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonce = os.urandom(12)
        blob = MAGIC + nonce + AESGCM(self._key).encrypt(nonce, snapshot.to_json(), AAD)
        temporary = self.path.with_name(f".{SNAPSHOT_FILE}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def read(self) -> Snapshot | None:
        """Return the snapshot, None if there is no file, or raise `SnapshotCorrupt`."""
        try:
            with self.path.open("rb") as file:
                blob = file.read(MAX_SNAPSHOT_BYTES + 1)
        except FileNotFoundError:
            return None
        if len(blob) > MAX_SNAPSHOT_BYTES or not blob.startswith(MAGIC):
            raise SnapshotCorrupt(f"{self.path} is not a break-glass snapshot (bad header or size)")
        nonce, ciphertext = blob[len(MAGIC) : len(MAGIC) + 12], blob[len(MAGIC) + 12 :]
        try:
            plaintext = AESGCM(self._key).decrypt(nonce, ciphertext, AAD)
        except InvalidTag:
            raise SnapshotCorrupt(
                f"{self.path} fails authentication: it was altered, truncated, "
                "or written with another master secret"
            ) from None
        try:
            return Snapshot.from_json(plaintext)
        except (ValueError, KeyError, TypeError) as error:
            raise SnapshotCorrupt(f"{self.path} decrypts but does not parse: {error}") from None
