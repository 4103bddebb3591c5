"""TOTP against the RFC 6238 table, the skew window and single use."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from appliance.identity.totp import (
    STEP_SECONDS,
    TotpInvalid,
    TotpReplayed,
    code_at,
    new_secret,
    verify_totp,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc6238_sha1.json").read_text())
SECRET = base64.b32encode(VECTORS["secret_ascii"].encode()).decode()


@pytest.mark.parametrize("row", VECTORS["rows"], ids=lambda row: str(row["time"]))
def test_rfc6238_sha1_vector(row: dict[str, object]) -> None:
    # The RFC lists 8-digit codes; a 6-digit code is the same value modulo 10**6.
    step = int(row["time"]) // STEP_SECONDS  # type: ignore[call-overload]
    assert code_at(SECRET, step) == str(row["totp"])[-6:]


def test_accepts_current_and_adjacent_steps() -> None:
    now = 1_700_000_000.0
    step = int(now // STEP_SECONDS)
    for offset in (-1, 0, 1):
        assert (
            verify_totp(SECRET, code_at(SECRET, step + offset), now=now, last_used_step=0)
            == step + offset
        )


def test_rejects_code_two_steps_old() -> None:
    now = 1_700_000_000.0
    step = int(now // STEP_SECONDS)
    with pytest.raises(TotpInvalid):
        verify_totp(SECRET, code_at(SECRET, step - 2), now=now, last_used_step=0)


def test_rejects_reused_step() -> None:
    now = 1_700_000_000.0
    step = verify_totp(SECRET, code_at(SECRET, int(now // STEP_SECONDS)), now=now, last_used_step=0)
    with pytest.raises(TotpReplayed):
        verify_totp(SECRET, code_at(SECRET, step), now=now, last_used_step=step)


def test_rejects_older_step_after_newer_use() -> None:
    now = 1_700_000_000.0
    step = int(now // STEP_SECONDS)
    with pytest.raises(TotpReplayed):
        verify_totp(SECRET, code_at(SECRET, step - 1), now=now, last_used_step=step)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", " 12345"])
def test_rejects_malformed_code(code: str) -> None:
    with pytest.raises(TotpInvalid):
        verify_totp(SECRET, code, now=1_700_000_000.0, last_used_step=0)


def test_new_secret_is_160_bits_base32() -> None:
    secret = new_secret()
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret
