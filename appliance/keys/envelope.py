"""Envelope encryption of private keys: HKDF-SHA256 + AES-256-GCM.

Each plane's master secret is mounted into that plane alone. From it HKDF
derives one key-encryption key per purpose; the `info` string binds the
plane and purpose, so the auth plane's master secret derives nothing that
opens a break-glass key. The associated data binds each ciphertext to its
org, plane and key id, so a ciphertext copied onto another row fails to open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
HKDF_SALT = b"appliance key hierarchy v1"


class EnvelopeError(Exception):
    """A ciphertext failed to open: wrong master secret, or tampered data."""


def derive_key(master_secret: bytes, *, plane: str, purpose: str) -> bytes:
    """Derive a 256-bit key for `purpose` on `plane` from the plane's master secret."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=HKDF_SALT,
        info=f"appliance/{plane}/{purpose}".encode(),
    ).derive(master_secret)


def associated_data(org_id: str, plane: str, kid: str) -> bytes:
    return f"org={org_id};plane={plane};kid={kid}".encode()


@dataclass(frozen=True)
class Envelope:
    """AES-256-GCM under the key-encryption key of one plane."""

    plane: str
    kek: bytes = field(repr=False)

    @classmethod
    def for_plane(cls, master_secret: bytes, plane: str) -> Envelope:
        return cls(plane, derive_key(master_secret, plane=plane, purpose="signing-key-encryption"))

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt `plaintext`; return (nonce, ciphertext)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, AESGCM(self.kek).encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self.kek).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise EnvelopeError(
                f"cannot decrypt key material for {aad.decode(errors='replace')}: "
                "wrong master secret for this plane, or the row was altered"
            ) from None
