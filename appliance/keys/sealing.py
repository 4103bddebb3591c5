"""Sealing secrets to a plane: X25519 sealed boxes (libsodium `crypto_box_seal`).

The admin plane enrolls break-glass TOTP seeds but must not be able to read
them back. It seals each seed to the break-glass plane's public sealing key;
only the break-glass plane, which derives the private half from its master
secret, can open it.
"""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from appliance.keys.envelope import EnvelopeError, derive_key


def sealing_private_key(master_secret: bytes, plane: str) -> PrivateKey:
    return PrivateKey(derive_key(master_secret, plane=plane, purpose="secret-sealing"))


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    return bytes(SealedBox(PublicKey(public_key)).encrypt(plaintext))


def unseal(private_key: PrivateKey, sealed: bytes) -> bytes:
    try:
        return bytes(SealedBox(private_key).decrypt(sealed))
    except CryptoError:
        raise EnvelopeError(
            "cannot open a sealed secret: it was sealed to another key, or altered"
        ) from None
