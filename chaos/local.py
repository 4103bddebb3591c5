"""The local driver: the four planes as processes on this machine, PostgreSQL embedded or given.

It reuses `appliance up`'s pieces (data folder, migration and demo seed, plane
processes). Every plane reaches PostgreSQL through its own `SocketProxy`, so a
drill can partition one plane from the database, and cut a given server,
which it cannot stop, from every plane at once.
When this machine has two or more CPUs, the auth plane and the load that
saturates it are pinned to the last CPU, and everything else to the others.
On Kubernetes the auth plane has a node pool of its own. Without the pinning,
the drill would measure CPU contention of this one machine instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from appliance.cli.up import PlaneProcess, plane_env, prepare_database
from appliance.keys.sealing import sealing_private_key
from appliance.local import DataDir
from appliance.log import log_fields
from appliance.settings import Plane
from chaos.database import DrillDatabase, EmbeddedDatabase
from chaos.drivers import PLANE_ROLE_ACCESS
from chaos.proxy import ProxyMode, SocketProxy

log = logging.getLogger("chaos.local")

PLANE_ORDER = [Plane.AUTH, Plane.ADMIN, Plane.PIM, Plane.BREAKGLASS]
START_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.02


def cpu_sets() -> tuple[set[int], set[int]] | None:
    """(auth CPUs, other CPUs), or None when there is only one CPU to use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


class LocalDriver:
    """Planes as `appliance serve` processes, with secrets and logs in `root`.

    `database` defaults to an embedded server in `root`. `keep_database` keeps
    a given server's drill database and roles after `teardown`.
    """

    def __init__(
        self,
        root: Path,
        *,
        base_port: int,
        database: DrillDatabase | None = None,
        keep_database: bool = False,
        extra_env: dict[Plane, dict[str, str]] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.data = DataDir(root)
        self.database = database or EmbeddedDatabase(root)
        self.keep_database = keep_database
        self.progress = progress or (lambda _line: None)
        self.database_cut = False
        self.base_port = base_port
        self.ports = {plane: base_port + index for index, plane in enumerate(PLANE_ORDER)}
        self.extra_env = extra_env or {}
        self.planes: dict[Plane, PlaneProcess] = {}
        self.proxies: dict[Plane, SocketProxy] = {}
        self.cpus = cpu_sets()

    def url(self, plane: Plane) -> str:
        return f"http://127.0.0.1:{self.ports[plane]}"

    @property
    def admin_dsn(self) -> str:
        """DSN that bypasses row-level security: for seeding and audit checks."""
        return self.database.admin_dsn

    def role_dsn(self, plane: Plane) -> str:
        """DSN of `plane`'s role straight to PostgreSQL, around the plane's proxy."""
        return self.database.role_dsn(plane, self.data.role_password(plane))

    capabilities = frozenset({PLANE_ROLE_ACCESS})

    def master_secret_file(self, plane: Plane) -> str:
        return str(self.data.master_secret_file(plane))

    @property
    def stops_database(self) -> bool:
        return self.database.can_stop

    @property
    def role_prefix(self) -> str:
        return self.database.role_prefix

    async def seal_public_keys(self, conn: asyncpg.Connection) -> dict[Plane, bytes]:
        """Derive the planes' sealing keys from their master secrets: no plane runs yet."""
        return {
            plane: bytes(
                sealing_private_key(self.data.master_secret(plane), plane.value).public_key
            )
            for plane in Plane
        }

    async def setup(self, seed: Callable[[], Awaitable[None]]) -> None:
        """Create the database, migrate, seed org `demo`, start the proxies and the four planes.

        `seed` runs after the demo seed and before any plane starts, so what it
        writes is in break-glass's first snapshot.
        """
        self.data.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data.ensure_secrets()
        await self.database.create(self.progress)
        self._pin_postgres()
        await prepare_database(
            self.data,
            self.admin_dsn,
            self.url(Plane.BREAKGLASS),
            role_prefix=self.database.role_prefix,
        )
        await seed()
        for plane in PLANE_ORDER:
            proxy = self.database.new_proxy(self.data.root / "proxy" / plane.value)
            await proxy.start()
            self.proxies[plane] = proxy
            database_url = self.database.through_proxy(self.role_dsn(plane), proxy)
            env = plane_env(self.data, plane, self.ports[plane], database_url)
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
        await self.database.close(keep=self.keep_database)

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
        pid = self.database.server_pid()
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
        reachable = not self.database_cut and self.database.is_running()
        path = "/readyz" if plane is Plane.BREAKGLASS or reachable else "/healthz"
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
        """Stop the embedded server, or cut a given one from every plane at the proxies."""
        if self.database.can_stop:
            await self.database.stop()
            return
        self.database_cut = True
        for proxy in self.proxies.values():
            proxy.set_mode(ProxyMode.DROP)

    async def start_database(self) -> None:
        if self.database.can_stop:
            await self.database.start()
            self._pin_postgres()
            return
        for proxy in self.proxies.values():
            proxy.set_mode(ProxyMode.PASS)
        self.database_cut = False

    async def partition(self, plane: Plane, mode: ProxyMode) -> None:
        self.proxies[plane].set_mode(mode)
