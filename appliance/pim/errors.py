"""Errors of the PIM plane that reach a client, each with its wire code.

A 409 or 403 names the rule that stopped the call in its `error` code (for
scripts) and explains it in its description (for people), for example
`request_expired`: "request ... expired at ... without enough approvals".
"""

from __future__ import annotations

from appliance.errors import ApiError


class CodedError(ApiError):
    """An error whose wire code is chosen per instance from a fixed family."""

    def __init__(
        self, code: str, description: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description, headers=headers)
        self.error = code


class Unauthorized(ApiError):
    status = 401
    error = "invalid_token"

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class LoginFailed(ApiError):
    status = 401
    error = "login_failed"


class Forbidden(CodedError):
    status = 403


class Conflict(CodedError):
    status = 409
