"""Checks of registered JWT claims (RFC 7519 section 4.1) with one clock-skew allowance."""

from __future__ import annotations

from typing import Any

from appliance.oidc.jose import JoseError

# Clocks of clients and servers drift; a JWT is accepted up to this many
# seconds before its `nbf`/`iat` or after its `exp`. Small, because it also
# extends the life of every stolen token.
CLOCK_SKEW_SECONDS = 30


def _numeric(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JoseError(f"claim {name} is not a number")
    return int(value)


def check_times(claims: dict[str, Any], *, now: float, max_lifetime: int | None = None) -> int:
    """Check `exp` (required), `nbf` and `iat` against `now`; return `exp`.

    With `max_lifetime`, a token whose `exp` lies further than that in the
    future is rejected, so a client cannot mint assertions that live for years.
    """
    exp = _numeric(claims, "exp")
    if exp is None:
        raise JoseError("claim exp is missing")
    if exp + CLOCK_SKEW_SECONDS <= now:
        raise JoseError("token has expired")
    nbf = _numeric(claims, "nbf")
    if nbf is not None and nbf - CLOCK_SKEW_SECONDS > now:
        raise JoseError("token is not yet valid (nbf)")
    iat = _numeric(claims, "iat")
    if iat is not None and iat - CLOCK_SKEW_SECONDS > now:
        raise JoseError("token was issued in the future (iat)")
    if max_lifetime is not None and exp - now > max_lifetime + CLOCK_SKEW_SECONDS:
        raise JoseError(f"token lives longer than {max_lifetime} seconds")
    return exp


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise JoseError("claim aud is missing or not a string or list of strings")


def check_audience(claims: dict[str, Any], accepted: set[str]) -> None:
    if not accepted.intersection(audiences(claims)):
        raise JoseError("claim aud does not name this server")


def check_issuer(claims: dict[str, Any], issuer: str) -> None:
    if claims.get("iss") != issuer:
        raise JoseError("claim iss is not this issuer")
