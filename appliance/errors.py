"""Errors that reach a client: one class per wire error code.

Each carries its `error` code, HTTP status and headers; `app.py` renders them
all as `{"error": ..., "error_description": ...}`. The description says what
failed on which value and what to do, but never which authentication factor
was wrong: that detail goes to the audit log only.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    error = "invalid_request"

    def __init__(self, description: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}


class InvalidRequest(ApiError):
    status = 400
    error = "invalid_request"


class ActivationFailed(ApiError):
    status = 401
    error = "activation_failed"


class NotFound(ApiError):
    status = 404
    error = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    error = "method_not_allowed"


class PayloadTooLarge(ApiError):
    status = 413
    error = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    error = "unsupported_media_type"


class RateLimited(ApiError):
    status = 429
    error = "rate_limited"


class ServiceUnavailable(ApiError):
    status = 503
    error = "temporarily_unavailable"
