"""Client secrets: generated with 256 random bits, stored as HMAC-SHA256 under a per-client salt.

A client secret is no password: it is machine-generated and carries 256 bits
of entropy, so a fast keyed hash cannot be brute-forced. The token endpoint
checks a secret on every request, and this costs it microseconds instead of
the 19 MiB and tens of milliseconds of Argon2id. The salt keeps
two clients with equal secrets (for example, copied by an operator) from
having equal hashes. Comparison is constant-time, here and nowhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SALT_BYTES = 16
SECRET_BYTES = 32


def new_client_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_client_secret(secret: str, salt: bytes) -> bytes:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()


def hash_new_client_secret(secret: str) -> tuple[bytes, bytes]:
    """Return (salt, hash) for storing `secret`."""
    salt = secrets.token_bytes(SALT_BYTES)
    return salt, hash_client_secret(secret, salt)


def client_secret_matches(secret: str, *, salt: bytes, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_client_secret(secret, salt), stored_hash)
