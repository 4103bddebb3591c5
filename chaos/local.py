"""The local driver: the four planes as processes on this machine, PostgreSQL embedded or given.

It reuses `appliance up`'s pieces (data folder, embedded server, migration and
demo seed, plane processes). Every plane reaches PostgreSQL through its own
`SocketProxy`, so a drill can partition one plane from the database.
When this machine has two or more CPUs, the auth plane and the load that
saturates it are pinned to the last CPU, and everything else to the others.
On Kubernetes the auth plane has a node pool of its own. Without the pinning,
the drill would measure CPU contention of this one machine instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from appliance.cli.up import PlaneProcess, plane_env, prepare_database
from appliance.db.embedded import SOCKET_FILE_NAME, EmbeddedPostgres
from appliance.local import DataDir
from appliance.log import log_fields
from appliance.settings import Plane
from chaos.proxy import ProxyMode, SocketProxy

log = logging.getLogger("chaos.local")

PLANE_ORDER = [Plane.AUTH, Plane.ADMIN, Plane.PIM, Plane.BREAKGLASS]
START_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.02


def via_socket_dir(dsn: str, socket_dir: Path) -> str:
    """Return `dsn` with its Unix socket directory (`host` query parameter) replaced."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["host"] = str(socket_dir)
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


def cpu_sets() -> tuple[set[int], set[int]] | None:
    """(auth CPUs, other CPUs), or None when there is only one CPU to use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


class LocalDriver:
    """Planes as `appliance serve` processes against the embedded PostgreSQL in `root`."""

    def __init__(
        self, root: Path, *, base_port: int, extra_env: dict[Plane, dict[str, str]] | None = None
    ) -> None:
        self.data = DataDir(root)
        self.pg = EmbeddedPostgres(root)
        self.base_port = base_port
        self.ports = {plane: base_port + index for index, plane in enumerate(PLANE_ORDER)}
        self.extra_env = extra_env or {}
        self.planes: dict[Plane, PlaneProcess] = {}
        self.proxies: dict[Plane, SocketProxy] = {}
        self.cpus = cpu_sets()

    def url(self, plane: Plane) -> str:
        return f"http://127.0.0.1:{self.ports[plane]}"

    @property
    def superuser_dsn(self) -> str:
        return self.pg.superuser_dsn("appliance")

    def demo_credentials(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.data.demo_credentials.read_text("utf-8"))
        return loaded

    async def setup(self, before_planes: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start PostgreSQL, migrate, seed org `demo`, start the proxies and the four planes.

        `before_planes` runs after the seed and before any plane starts, so what it
        writes is in break-glass's first snapshot.
        """
        self.data.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data.ensure_secrets()
        await asyncio.to_thread(self.pg.ensure_initialized)
        await asyncio.to_thread(self.pg.start)
        self._pin_postgres()
        await prepare_database(self.data, self.pg, self.url(Plane.BREAKGLASS))
        if before_planes is not None:
            await before_planes()
        for plane in PLANE_ORDER:
            proxy_dir = self.data.root / "proxy" / plane.value
            proxy = SocketProxy(proxy_dir / SOCKET_FILE_NAME, self.pg.socket_dir / SOCKET_FILE_NAME)
            await proxy.start()
            self.proxies[plane] = proxy
            env = plane_env(self.data, self.pg, plane, self.ports[plane])
            key = f"APPLIANCE_{plane.name}_DATABASE_URL"
            env[key] = via_socket_dir(env[key], proxy_dir)
            env["APPLIANCE_LOG_LEVEL"] = "warning"
            env.update(self.extra_env.get(plane, {}))
            self.planes[plane] = PlaneProcess(
                plane, self.ports[plane], env, self.data.log_file(plane)
            )
        await asyncio.gather(*(self.start_plane(plane) for plane in PLANE_ORDER))

    async def teardown(self) -> None:
        for process in self.planes.values():
            await asyncio.to_thread(process.stop)
        for proxy in self.proxies.values():
            await proxy.close()
        await asyncio.to_thread(self.pg.stop)

    def _pin(self, pid: int, plane: Plane | None) -> None:
        if self.cpus is None:
            return
        auth_cpus, other_cpus = self.cpus
        try:
            os.sched_setaffinity(pid, auth_cpus if plane is Plane.AUTH else other_cpus)
        except OSError as error:
            log.warning("could not pin process", extra=log_fields(pid=pid, error=str(error)))

    def _pin_postgres(self) -> None:
        # Backends are forked from the postmaster and inherit its CPU set.
        pid = self.pg.postmaster_pid()
        if pid is not None:
            self._pin(pid, None)

    def pin_load(self, pid: int) -> None:
        """Pin a load generator aimed at the auth plane to the auth plane's CPU."""
        self._pin(pid, Plane.AUTH)

    async def kill_plane(self, plane: Plane) -> None:
        process = self.planes[plane]
        if process.process is not None and process.process.poll() is None:
            process.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.process.wait)
        await asyncio.to_thread(process.stop)

    async def scale_down_plane(self, plane: Plane) -> None:
        await self.kill_plane(plane)

    async def start_plane(self, plane: Plane) -> float:
        """Start the plane's process; return the seconds until its /readyz returned 200.

        While PostgreSQL is down only break-glass can be ready, so the other planes
        count as serving once /healthz returns 200.
        """
        process = self.planes[plane]
        began = time.monotonic()
        await asyncio.to_thread(process.start)
        assert process.process is not None
        self._pin(process.process.pid, plane)
        path = "/readyz" if plane is Plane.BREAKGLASS or self.pg.is_running() else "/healthz"
        deadline = began + START_TIMEOUT_SECONDS
        async with httpx.AsyncClient() as client:
            while True:
                if process.process.poll() is not None:
                    raise RuntimeError(
                        f"plane {plane.value} exited with code "
                        f"{process.process.returncode} at start; "
                        f"its log ({process.log_path}) ends with:\n{process.log_tail()}"
                    )
                try:
                    response = await client.get(f"{process.url}{path}", timeout=1.0)
                    if response.status_code == 200:
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"plane {plane.value} not serving after {START_TIMEOUT_SECONDS:.0f}s"
                    )
                await asyncio.sleep(POLL_SECONDS)

    async def stop_database(self) -> None:
        await asyncio.to_thread(self.pg.stop)

    async def start_database(self) -> None:
        await asyncio.to_thread(self.pg.start)
        self._pin_postgres()

    async def partition(self, plane: Plane, mode: ProxyMode) -> None:
        self.proxies[plane].set_mode(mode)
