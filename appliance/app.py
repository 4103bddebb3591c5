"""The Quart app factory: one app, mounted as one plane or all of them."""

from __future__ import annotations

import asyncio
import importlib
import logging
import secrets
from typing import Protocol

import asyncpg
from quart import Quart, Response, jsonify, request
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from appliance.clock import Clock, system_clock
from appliance.db.errors import DATABASE_UNAVAILABLE
from appliance.db.pool import create_plane_pool
from appliance.errors import ApiError
from appliance.log import log_fields, request_id
from appliance.settings import Plane, PlaneSettings, Settings
from appliance.web import health
from appliance.web.http import MAX_BODY_BYTES

log = logging.getLogger("appliance.app")


# Seconds a pool may take to close its connections at shutdown before they are cut.
POOL_CLOSE_TIMEOUT = 3.0

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


class PlaneModule(Protocol):
    """What each plane package provides in its `plane` module."""

    def register(self, app: Quart) -> None: ...

    async def startup(
        self, app: Quart, pool: asyncpg.Pool, plane: PlaneSettings, settings: Settings, clock: Clock
    ) -> None: ...


# Each plane's package; its `plane` module mounts the routes and starts services.
PLANE_PACKAGES = {
    Plane.AUTH: "appliance.oidc",
    Plane.ADMIN: "appliance.admin",
    Plane.PIM: "appliance.pim",
    Plane.BREAKGLASS: "appliance.breakglass",
}


def plane_module(plane: Plane) -> PlaneModule:
    module: PlaneModule = importlib.import_module(f"{PLANE_PACKAGES[plane]}.plane")
    return module


def create_app(settings: Settings, *, clock: Clock = system_clock) -> Quart:
    """Build the app for `settings.planes`; pools open when serving starts."""
    app = Quart("appliance")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["PLANES"] = [plane.value for plane in settings.planes]
    app.config["SETTINGS"] = settings
    app.extensions["clock"] = clock
    app.extensions["metrics"] = health.Metrics()
    app.extensions["pools"] = {}
    app.register_blueprint(health.blueprint)
    for plane in settings.planes:
        plane_module(plane).register(app)
    _register_lifecycle(app, settings, clock)
    _register_error_handlers(app)
    return app


def _register_lifecycle(app: Quart, settings: Settings, clock: Clock) -> None:
    @app.before_serving
    async def open_pools() -> None:
        for plane, plane_settings in settings.planes.items():
            # Break-glass must start and serve from its snapshot while PostgreSQL
            # is down, so its pool connects lazily instead of waiting at start.
            pool = await create_plane_pool(plane_settings, wait=plane is not Plane.BREAKGLASS)
            app.extensions["pools"][plane.value] = pool
            await plane_module(plane).startup(app, pool, plane_settings, settings, clock)
        log.info("planes serving", extra=log_fields(planes=app.config["PLANES"]))

    @app.after_serving
    async def close_pools() -> None:
        for plane in settings.planes:
            shutdown = getattr(plane_module(plane), "shutdown", None)
            if shutdown is not None:
                await shutdown(app)
        for plane, pool in app.extensions["pools"].items():
            # A stalled PostgreSQL never acknowledges the Terminate message, and a
            # shutdown that waits for it would wait until the process is killed.
            # asyncio.wait, unlike wait_for, does not wait for the cancelled close.
            closing = asyncio.ensure_future(pool.close())
            done, _ = await asyncio.wait({closing}, timeout=POOL_CLOSE_TIMEOUT)
            if done:
                log.info("database pool closed", extra=log_fields(plane=plane))
                continue
            pool.terminate()
            closing.cancel()
            log.warning(
                "database pool terminated: closing timed out",
                extra=log_fields(plane=plane, timeout_seconds=POOL_CLOSE_TIMEOUT),
            )

    @app.before_request
    async def assign_request_id() -> None:
        request_id.set(secrets.token_hex(8))

    @app.after_request
    async def add_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        rid = request_id.get()
        if rid is not None:
            response.headers["X-Request-Id"] = rid
        return response


def error_response(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return response


def _register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> ResponseReturnValue:
        response = error_response(error.status, error.error, error.description)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
        return error_response(
            413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes"
        )

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        names = {404: "not_found", 405: "method_not_allowed"}
        description = {
            404: f"no route for {request.path} on this plane",
            405: f"method {request.method} is not allowed on {request.path}",
        }.get(code, error.description or "request failed")
        return error_response(code, names.get(code, "invalid_request"), description)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> ResponseReturnValue:
        if isinstance(error, DATABASE_UNAVAILABLE):
            log.warning(
                "database unavailable",
                extra=log_fields(path=request.path, error=type(error).__name__),
            )
            response = error_response(
                503, "temporarily_unavailable", "the database is unavailable; retry shortly"
            )
            response.headers["Retry-After"] = "2"
            return response
        log.error(
            "unhandled error",
            exc_info=error,
            extra=log_fields(path=request.path, method=request.method),
        )
        return error_response(
            500,
            "server_error",
            f"internal error; quote request id {request_id.get()} to the operator",
        )
