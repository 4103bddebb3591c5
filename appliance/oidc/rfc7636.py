"""Proof Key for Code Exchange (RFC 7636), S256 only.

Every client, confidential or public, must send a `code_challenge` with
`code_challenge_method=S256`. `plain` is rejected: it protects nothing once
the authorization request leaks, and OAuth 2.1 drops it. A missing method is
rejected too, because RFC 7636 section 4.3 makes `plain` its default.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from appliance.oidc.errors import InvalidGrant, InvalidRequest

# A code verifier is 43 to 128 unreserved characters (RFC 7636 section 4.1);
# an S256 challenge is the unpadded base64url of 32 bytes: 43 characters.
VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
SUPPORTED_METHODS = ("S256",)


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Return a valid S256 `code_challenge`, or raise `InvalidRequest`."""
    if challenge is None:
        raise InvalidRequest(
            "code_challenge is missing: PKCE with code_challenge_method=S256 is required"
        )
    if method is None:
        raise InvalidRequest("code_challenge_method is missing: send S256 (plain is not accepted)")
    if method != "S256":
        raise InvalidRequest(f"code_challenge_method {method[:20]!r} is not supported: use S256")
    if not CHALLENGE_PATTERN.match(challenge):
        raise InvalidRequest(
            "code_challenge is not the base64url SHA-256 of a code verifier (43 characters)"
        )
    return challenge


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str | None, challenge: str) -> None:
    """Raise unless `verifier` hashes to `challenge` (RFC 7636 section 4.6)."""
    if verifier is None:
        raise InvalidRequest(
            "code_verifier is missing: send the PKCE verifier of this authorization"
        )
    if not VERIFIER_PATTERN.match(verifier):
        raise InvalidRequest("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge of this authorization")
