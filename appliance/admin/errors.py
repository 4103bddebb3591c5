"""Errors of the admin API, beside the shared ones in `appliance.errors`."""

from __future__ import annotations

from appliance.errors import ApiError


class Unauthorized(ApiError):
    """No valid session: the bearer token is missing, malformed, expired or revoked."""

    status = 401
    error = "unauthorized"

    def __init__(self, description: str) -> None:
        super().__init__(
            description, headers={"WWW-Authenticate": 'Bearer realm="appliance-admin"'}
        )


class Forbidden(ApiError):
    """The caller's roles in this org do not include the permission the call needs."""

    status = 403
    error = "forbidden"


class Conflict(ApiError):
    """The request is valid but clashes with the current state (duplicate, last admin, ...)."""

    status = 409
    error = "conflict"
