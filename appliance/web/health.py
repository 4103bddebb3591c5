"""Health, readiness and Prometheus metrics, mounted on every plane."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from quart import Blueprint, Response, current_app, g, jsonify, request
from quart.typing import ResponseReturnValue

blueprint = Blueprint("health", __name__)

READINESS_TIMEOUT_SECONDS = 1.0


class Metrics:
    """Per-app registry, so two apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "appliance_http_requests",
            "HTTP requests by plane, route and status",
            ["plane", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "appliance_http_request_duration_seconds",
            "HTTP request latency by plane and route",
            ["plane", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


def metrics() -> Metrics:
    m: Metrics = current_app.extensions["metrics"]
    return m


def route_plane(endpoint: str | None) -> str:
    blueprint_name = (endpoint or "").partition(".")[0]
    return blueprint_name if blueprint_name in ("auth", "admin", "pim", "breakglass") else "common"


@blueprint.before_app_request
async def start_timer() -> None:
    g.started = time.perf_counter()


@blueprint.after_app_request
async def record(response: Response) -> Response:
    started = getattr(g, "started", None)
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    plane = route_plane(request.endpoint)
    m = metrics()
    m.requests.labels(plane, route, str(response.status_code)).inc()
    if started is not None:
        m.latency.labels(plane, route).observe(time.perf_counter() - started)
    return response


@blueprint.get("/healthz")
async def healthz() -> ResponseReturnValue:
    """Liveness: the process serves requests. Says nothing about the database."""
    return jsonify({"status": "ok", "planes": current_app.config["PLANES"]})


@blueprint.get("/readyz")
async def readyz() -> ResponseReturnValue:
    """Readiness: every pool of this process answers a query within a second.

    A plane may register its own check in `app.extensions["readiness"]`: the
    break-glass plane stays ready while it can serve from its snapshot.
    """
    pools: dict[str, asyncpg.Pool] = current_app.extensions["pools"]
    overrides: dict[str, Callable[[], tuple[bool, dict[str, Any]]]] = current_app.extensions.get(
        "readiness", {}
    )
    checks: dict[str, Any] = {}
    ready = True
    for plane, pool in pools.items():
        if plane in overrides:
            plane_ready, checks[plane] = overrides[plane]()
            ready = ready and plane_ready
            continue
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                await pool.fetchval("SELECT 1")
            checks[plane] = "ok"
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            ready = False
            checks[plane] = f"database unreachable: {type(error).__name__}"
    body = {"status": "ready" if ready else "not ready", "planes": checks}
    return jsonify(body), 200 if ready else 503


@blueprint.get("/metrics")
async def prometheus_metrics() -> ResponseReturnValue:
    return Response(generate_latest(metrics().registry), content_type=CONTENT_TYPE_LATEST)
