"""Argon2id passphrase hashing with a bounded number of hashes in flight.

Cost: 19 MiB of memory and 2 passes, one lane: OWASP's minimum for Argon2id.
PyNaCl's INTERACTIVE limits (64 MiB) would cost about 70 ms and 64 MiB per
hash, which breaks both the break-glass latency target and a plane's 128 MiB
memory limit. The semaphore bounds concurrent hashes per process, so a burst
of logins costs at most `MAX_CONCURRENT_HASHES * 19 MiB` and queues the rest.
Verification reads the cost from the stored hash, so raising these values
later needs no migration: old hashes still verify and are rehashed on success.
"""

from __future__ import annotations

import asyncio
import contextlib

import nacl.exceptions
import nacl.pwhash

ARGON2_OPSLIMIT = 2
ARGON2_MEMLIMIT = 19 * 1024 * 1024
MAX_CONCURRENT_HASHES = 2
MAX_PASSPHRASE_BYTES = 1024

_hash_slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)

# A valid hash of a random passphrase, verified against when the account does
# not exist, so a missing account costs the same time as a wrong passphrase.
_DUMMY_HASH: bytes | None = None


class PassphraseMismatch(Exception):
    """The passphrase does not match the stored hash."""


def hash_passphrase(passphrase: str) -> str:
    encoded = passphrase.encode()
    if len(encoded) > MAX_PASSPHRASE_BYTES:
        raise ValueError(f"passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")
    hashed: bytes = nacl.pwhash.argon2id.str(
        encoded, opslimit=ARGON2_OPSLIMIT, memlimit=ARGON2_MEMLIMIT
    )
    return hashed.decode()


def verify_passphrase_sync(stored_hash: str, passphrase: str) -> None:
    """Raise `PassphraseMismatch` unless `passphrase` matches `stored_hash`."""
    encoded = passphrase.encode()
    if len(encoded) > MAX_PASSPHRASE_BYTES:
        raise PassphraseMismatch()
    try:
        nacl.pwhash.verify(stored_hash.encode(), encoded)
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        raise PassphraseMismatch() from None


async def verify_passphrase(stored_hash: str | None, passphrase: str) -> None:
    """Verify in a worker thread, at most `MAX_CONCURRENT_HASHES` at once per process.

    With `stored_hash=None` (unknown account) a dummy hash is verified and the
    call raises, so the caller's timing does not reveal whether the account exists.
    """
    global _DUMMY_HASH
    async with _hash_slots:
        if stored_hash is None:
            if _DUMMY_HASH is None:
                _DUMMY_HASH = (
                    await asyncio.to_thread(hash_passphrase, "not-a-real-account")
                ).encode()
            await asyncio.to_thread(_verify_dummy, _DUMMY_HASH, passphrase)
            raise PassphraseMismatch()
        await asyncio.to_thread(verify_passphrase_sync, stored_hash, passphrase)


def _verify_dummy(dummy: bytes, passphrase: str) -> None:
    with contextlib.suppress(PassphraseMismatch):
        verify_passphrase_sync(dummy.decode(), passphrase)
