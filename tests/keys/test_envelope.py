"""Envelope encryption: HKDF-derived keys per plane, AES-GCM bound to its row."""

from __future__ import annotations

import secrets

import pytest

from appliance.keys.envelope import Envelope, EnvelopeError, associated_data, derive_key
from appliance.keys.sealing import seal, sealing_private_key, unseal


def test_round_trip() -> None:
    envelope = Envelope.for_plane(secrets.token_bytes(32), "breakglass")
    aad = associated_data("org-1", "breakglass", "kid-1")
    nonce, ciphertext = envelope.seal(b"private key", aad)
    assert envelope.open(nonce, ciphertext, aad) == b"private key"


def test_other_master_secret_cannot_open() -> None:
    aad = associated_data("org-1", "breakglass", "kid-1")
    nonce, ciphertext = Envelope.for_plane(secrets.token_bytes(32), "breakglass").seal(b"k", aad)
    with pytest.raises(EnvelopeError):
        Envelope.for_plane(secrets.token_bytes(32), "breakglass").open(nonce, ciphertext, aad)


def test_same_secret_other_plane_cannot_open() -> None:
    master = secrets.token_bytes(32)
    aad = associated_data("org-1", "breakglass", "kid-1")
    nonce, ciphertext = Envelope.for_plane(master, "breakglass").seal(b"k", aad)
    with pytest.raises(EnvelopeError):
        Envelope.for_plane(master, "auth").open(nonce, ciphertext, aad)


@pytest.mark.parametrize(
    "moved_to",
    [("org-2", "breakglass", "kid-1"), ("org-1", "pim", "kid-1"), ("org-1", "breakglass", "kid-2")],
)
def test_ciphertext_moved_to_other_row_fails(moved_to: tuple[str, str, str]) -> None:
    envelope = Envelope.for_plane(secrets.token_bytes(32), "breakglass")
    nonce, ciphertext = envelope.seal(b"k", associated_data("org-1", "breakglass", "kid-1"))
    with pytest.raises(EnvelopeError):
        envelope.open(nonce, ciphertext, associated_data(*moved_to))


def test_tampered_ciphertext_fails() -> None:
    envelope = Envelope.for_plane(secrets.token_bytes(32), "pim")
    aad = associated_data("o", "pim", "k")
    nonce, ciphertext = envelope.seal(b"secret", aad)
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(EnvelopeError):
        envelope.open(nonce, tampered, aad)


def test_derived_keys_differ_by_purpose_and_plane() -> None:
    master = secrets.token_bytes(32)
    keys = {
        derive_key(master, plane=plane, purpose=purpose)
        for plane in ("auth", "pim", "breakglass")
        for purpose in ("signing-key-encryption", "secret-sealing")
    }
    assert len(keys) == 6


def test_sealed_secret_opens_only_with_plane_key() -> None:
    master = secrets.token_bytes(32)
    private = sealing_private_key(master, "breakglass")
    sealed = seal(bytes(private.public_key), b"JBSWY3DPEHPK3PXP")
    assert unseal(private, sealed) == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(EnvelopeError):
        unseal(sealing_private_key(master, "auth"), sealed)
