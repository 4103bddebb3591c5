"""OAuth error responses: one class per wire `error` code.

Token, introspection and revocation endpoints respond with the JSON body of
RFC 6749 section 5.2 (`error`, `error_description`), rendered by the app's
`ApiError` handler. Bearer-protected resources (userinfo) answer as RFC 6750
section 3 requires: 401 with a `WWW-Authenticate: Bearer` challenge that repeats
the error code. The authorization endpoint redirects these same codes to the
client (RFC 6749 section 4.1.2.1) once the client and redirect URI are known.

Descriptions tell the client which parameter failed and what to send; they
never say which secret was wrong. The precise reason goes to the log or the
audit chain.
"""

from __future__ import annotations

from appliance.errors import ApiError


class OAuthError(ApiError):
    """An OAuth 2.0 error with its wire code, HTTP status and headers."""

    status = 400
    error = "invalid_request"


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 section 5.2): always 401."""

    status = 401
    error = "invalid_client"


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class AccessDenied(OAuthError):
    status = 403
    error = "access_denied"


class InvalidTarget(OAuthError):
    """A `resource` indicator is invalid or not allowed (RFC 8707 section 2)."""

    error = "invalid_target"


class UnsupportedTokenType(OAuthError):
    """The server cannot revoke this type of token (RFC 7009 section 2.2.1)."""

    error = "unsupported_token_type"


class LoginRequired(OAuthError):
    """`prompt=none` but the user has no session (OpenID Connect Core 3.1.2.6)."""

    status = 401
    error = "login_required"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class BearerError(OAuthError):
    """An RFC 6750 error: the challenge in `WWW-Authenticate` repeats the code."""

    def __init__(self, description: str, *, realm: str) -> None:
        challenge = (
            f'Bearer realm="{realm}", error="{self.error}", '
            f'error_description="{_quote(description)}"'
        )
        super().__init__(description, headers={"WWW-Authenticate": challenge})


class InvalidToken(BearerError):
    status = 401
    error = "invalid_token"


class InsufficientScope(BearerError):
    status = 403
    error = "insufficient_scope"


class BearerTokenMissing(OAuthError):
    """No bearer token at all: RFC 6750 section 3.1 sends no error code then."""

    status = 401
    error = "invalid_request"

    def __init__(self, *, realm: str) -> None:
        super().__init__(
            "the request carries no access token: send it as `Authorization: Bearer TOKEN`",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )


def _quote(text: str) -> str:
    """Keep a description legal inside a quoted-string.

    RFC 6750 section 3 allows only %x20-21 / %x23-5B / %x5D-7E there.
    """
    return "".join(ch if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\' else "'" for ch in text)
