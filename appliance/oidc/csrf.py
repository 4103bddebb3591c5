"""CSRF protection of the login and logout forms: a signed double-submit cookie.

The page sets a random cookie and puts HMAC(key, cookie) in a hidden field.
A forged cross-site form can neither read the cookie nor compute the field,
so a POST whose field does not match its cookie is rejected. This also stops
login CSRF (signing a victim into the attacker's account).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE_NAME = "appliance_auth_csrf"
MAX_TOKEN_CHARS = 128


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def form_token(key: bytes, cookie_value: str) -> str:
    return hmac.new(key, cookie_value.encode(), hashlib.sha256).hexdigest()


def form_token_matches(key: bytes, cookie_value: str | None, token: str | None) -> bool:
    if (
        not cookie_value
        or not token
        or len(cookie_value) > MAX_TOKEN_CHARS
        or len(token) > MAX_TOKEN_CHARS
    ):
        return False
    return hmac.compare_digest(form_token(key, cookie_value), token)
