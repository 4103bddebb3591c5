"""Argon2id passphrases: cost parameters, verification, unknown accounts."""

from __future__ import annotations

import pytest

from appliance.identity.passwords import (
    ARGON2_MEMLIMIT,
    MAX_PASSPHRASE_BYTES,
    PassphraseMismatch,
    hash_passphrase,
    verify_passphrase,
)


def test_hash_uses_argon2id_with_documented_cost() -> None:
    hashed = hash_passphrase("correct horse")
    assert hashed.startswith("$argon2id$")
    assert f"m={ARGON2_MEMLIMIT // 1024}," in hashed
    assert ",t=2," in hashed


async def test_correct_passphrase_verifies() -> None:
    await verify_passphrase(hash_passphrase("correct horse"), "correct horse")


async def test_wrong_passphrase_raises() -> None:
    with pytest.raises(PassphraseMismatch):
        await verify_passphrase(hash_passphrase("correct horse"), "correct horsE")


async def test_unknown_account_raises() -> None:
    with pytest.raises(PassphraseMismatch):
        await verify_passphrase(None, "anything")


async def test_oversized_passphrase_raises_without_hashing() -> None:
    with pytest.raises(PassphraseMismatch):
        await verify_passphrase(hash_passphrase("x"), "x" * (MAX_PASSPHRASE_BYTES + 1))
    with pytest.raises(ValueError, match="longer than"):
        hash_passphrase("x" * (MAX_PASSPHRASE_BYTES + 1))


async def test_malformed_stored_hash_is_a_mismatch() -> None:
    with pytest.raises(PassphraseMismatch):
        await verify_passphrase("$argon2id$garbage", "x")
