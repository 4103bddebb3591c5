"""Resource indicators (RFC 8707) and scopes (RFC 6749 section 3.3).

A client may name the resource servers a token is for with `resource`
parameters. Each must be an absolute URI without a fragment (RFC 8707
section 2) and one the client registered; anything else is `invalid_target`.
At the token endpoint a code or refresh grant may narrow the resources
authorised at the authorization endpoint, never widen them.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from appliance.oidc.clients import SCOPE_TOKEN, Client
from appliance.oidc.errors import InvalidScope, InvalidTarget

MAX_RESOURCES = 10
# Scopes that only make sense with a user behind the grant.
USER_SCOPES = frozenset({"openid", "profile", "email", "groups", "offline_access"})


def check_resources(resources: list[str], client: Client) -> list[str]:
    if len(resources) > MAX_RESOURCES:
        raise InvalidTarget(f"at most {MAX_RESOURCES} resource parameters are accepted")
    checked: list[str] = []
    for resource in resources:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or "#" in resource:
            raise InvalidTarget(
                f"resource {resource[:200]!r} must be an absolute URI without a fragment"
            )
        if resource not in client.resources:
            raise InvalidTarget(f"resource {resource[:200]!r} is not registered for this client")
        if resource not in checked:
            checked.append(resource)
    return checked


def narrow_resources(requested: list[str], granted: Iterable[str]) -> list[str]:
    """Return `requested` if it is a subset of `granted` (all of `granted` when empty)."""
    granted_list = list(granted)
    for resource in requested:
        if resource not in granted_list:
            raise InvalidTarget(
                f"resource {resource[:200]!r} was not part of the original authorization"
            )
    return list(dict.fromkeys(requested)) if requested else granted_list


def check_scope(requested: str | None, client: Client, *, user_present: bool) -> list[str]:
    """Return the requested scope tokens, each registered for the client, in request order."""
    if requested is None:
        return []
    tokens = requested.split(" ")
    result: list[str] = []
    for token in tokens:
        if not SCOPE_TOKEN.match(token):
            raise InvalidScope("scope must be scope tokens separated by single spaces")
        if token not in client.scopes:
            raise InvalidScope(f"scope {token[:128]!r} is not registered for this client")
        if not user_present and token in USER_SCOPES:
            raise InvalidScope(f"scope {token!r} needs a user; client_credentials has none")
        if token not in result:
            result.append(token)
    return result


def narrow_scope(requested: str | None, granted: str) -> str:
    """Return the scope of a refresh request: the granted one or less (RFC 6749 section 6)."""
    if requested is None:
        return granted
    granted_set = set(granted.split(" ")) if granted else set()
    tokens = list(dict.fromkeys(requested.split(" ")))
    for token in tokens:
        if token not in granted_set:
            raise InvalidScope(f"scope {token[:128]!r} exceeds the scope of the original grant")
    return " ".join(tokens)
