"""Redirect URI rules: exact matching, with the loopback exception of RFC 8252.

A redirect URI in a request must equal a registered one character for
character (OAuth 2.1 section 4.1.3; no normalisation, so case changes,
`..` segments, extra host labels and `user@host` tricks all fail). The one
exception is RFC 8252 section 7.3: for `http` on the loopback IP literals
127.0.0.1 and [::1], a native app picks its port at run time, so the port of
the request may differ from the registered one. The host `localhost` gets no
such exception (RFC 8252 section 8.3), and neither does any other part.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?([/?][^#]*)?$")
MAX_REDIRECT_URI_CHARS = 2048


def _loopback_parts(uri: str) -> tuple[str, str] | None:
    """Return (host, path-and-query) of a loopback redirect URI, or None if it is not one."""
    match = LOOPBACK.match(uri)
    if match is None:
        return None
    port = match.group(2)
    if port is not None and not 0 < int(port) <= 65535:
        return None
    return match.group(1), match.group(3) or "/"


def redirect_uri_matches(requested: str, registered: str) -> bool:
    if requested == registered:
        return True
    requested_parts = _loopback_parts(requested)
    registered_parts = _loopback_parts(registered)
    return requested_parts is not None and requested_parts == registered_parts


def find_redirect_uri(requested: str, registered: list[str]) -> str | None:
    """Return `requested` if it matches one of `registered`, else None."""
    for candidate in registered:
        if redirect_uri_matches(requested, candidate):
            return requested
    return None


def check_registered_redirect_uri(uri: str) -> str:
    """Validate a redirect URI at registration; raise `ValueError` saying what is wrong.

    Accepted: absolute `https` URIs, `http` on a loopback IP literal (native
    apps, RFC 8252 section 7.3) and private-use schemes such as
    `com.example.app:/callback` (RFC 8252 section 7.1). Never a fragment
    (RFC 6749 section 3.1.2) or user information.
    """
    if not uri or len(uri) > MAX_REDIRECT_URI_CHARS:
        raise ValueError(f"redirect URI must be 1 to {MAX_REDIRECT_URI_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in uri):
        raise ValueError(
            f"redirect URI {uri!r} contains whitespace or non-ASCII characters: percent-encode them"
        )
    parts = urlsplit(uri)
    if "#" in uri:
        raise ValueError(f"redirect URI {uri!r} has a fragment, which RFC 6749 forbids")
    if not parts.scheme:
        raise ValueError(f"redirect URI {uri!r} is not absolute")
    if parts.scheme == "https":
        if not parts.hostname or "@" in parts.netloc:
            raise ValueError(f"redirect URI {uri!r} needs a host and no user information")
        return uri
    if parts.scheme == "http":
        if _loopback_parts(uri) is None:
            raise ValueError(
                f"redirect URI {uri!r} uses http: only http://127.0.0.1 and http://[::1] "
                "are allowed without TLS"
            )
        return uri
    if "." in parts.scheme and not parts.netloc:
        return uri
    raise ValueError(
        f"redirect URI {uri!r}: use https, a loopback http URI, "
        "or a private-use scheme such as com.example.app:/cb"
    )
