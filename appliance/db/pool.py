"""One asyncpg pool per plane, each with its own budget and role.

Connecting at start retries with exponential backoff (tenacity), logging each
retry, so a plane that starts before PostgreSQL is ready waits instead of
crash-looping.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from appliance.log import log_fields
from appliance.settings import PlaneSettings

log = logging.getLogger("appliance.db.pool")

# Errors worth retrying at start: the server is down, starting or refusing.
TRANSIENT_CONNECT_ERRORS = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionFailureError,
    TimeoutError,
)

# How long one statement may run on a plane connection. A stuck query fails
# after this instead of holding a pooled connection indefinitely.
STATEMENT_TIMEOUT_MS = 10_000


def _log_retry(plane: str) -> Any:
    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "database connection failed; retrying",
            extra=log_fields(
                plane=plane,
                attempt=state.attempt_number,
                error=type(error).__name__ if error else None,
                detail=str(error)[:200] if error else None,
                next_retry_seconds=round(state.upcoming_sleep, 2),
            ),
        )

    return log_retry


async def create_plane_pool(
    settings: PlaneSettings, *, connect_deadline: float = 60.0, wait: bool = True
) -> asyncpg.Pool:
    """Open the plane's pool, retrying transient failures for `connect_deadline` seconds.

    With `wait=False` the pool opens no connection at start (min size 0), so
    it is created even while PostgreSQL is unreachable.
    """
    plane = settings.plane.value
    if not wait:
        return await asyncpg.create_pool(
            settings.database_url,
            min_size=0,
            max_size=settings.pool.max_size,
            timeout=settings.pool.acquire_timeout,
            command_timeout=STATEMENT_TIMEOUT_MS / 1000,
            server_settings=_server_settings(plane),
        )
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(TRANSIENT_CONNECT_ERRORS),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(connect_deadline),
        before_sleep=_log_retry(plane),
        reraise=True,
    ):
        with attempt:
            pool = await asyncpg.create_pool(
                settings.database_url,
                min_size=settings.pool.min_size,
                max_size=settings.pool.max_size,
                timeout=settings.pool.acquire_timeout,
                command_timeout=STATEMENT_TIMEOUT_MS / 1000,
                server_settings=_server_settings(plane),
            )
    log.info(
        "database pool ready",
        extra=log_fields(plane=plane, min=settings.pool.min_size, max=settings.pool.max_size),
    )
    return pool


def _server_settings(plane: str) -> dict[str, str]:
    return {
        "application_name": f"appliance-{plane}",
        "statement_timeout": str(STATEMENT_TIMEOUT_MS),
        "idle_in_transaction_session_timeout": "30000",
    }
