"""The interface a drill uses to reach, break and restore a deployment.

`chaos.local.LocalDriver` acts on processes on this machine, and
`chaos.kubernetes.KubernetesDriver` acts on a cluster through kubectl.
Scenarios that need more than a driver offers name it in `Scenario.needs`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg

from appliance.settings import Plane
from chaos.proxy import ProxyMode

# Capabilities a scenario may need beyond the methods every driver has.
# A plane role's DSN and a plane's master secret, as an operator of that plane has.
PLANE_ROLE_ACCESS = "plane-role-access"


class Driver(Protocol):
    @property
    def stops_database(self) -> bool:
        """Whether `stop_database` stops the server, rather than cutting it from the planes."""

    @property
    def role_prefix(self) -> str:
        """Prefix of the plane roles, which are named `<role_prefix>_<plane>`."""

    @property
    def capabilities(self) -> frozenset[str]:
        """Capabilities beyond the methods below, from the constants above."""

    @property
    def admin_dsn(self) -> str:
        """DSN of a superuser or BYPASSRLS role: for seeding and audit checks."""

    def url(self, plane: Plane) -> str:
        """Base URL of `plane`, as the workload calls it."""

    async def setup(self, seed: Callable[[], Awaitable[None]]) -> None:
        """Make the deployment ready and call `seed` once the database is."""

    async def teardown(self) -> None:
        """Restore what the drill changed and release what it started."""

    async def seal_public_keys(self, conn: asyncpg.Connection) -> dict[Plane, bytes]:
        """Return each plane's sealing public key, for secrets the drill seeds."""

    async def kill_plane(self, plane: Plane) -> None:
        """Kill every process (pod) of `plane` without a graceful shutdown."""

    async def start_plane(self, plane: Plane) -> float:
        """Bring `plane` back; return the seconds until it served again."""

    async def scale_down_plane(self, plane: Plane) -> None:
        """Take `plane` away until `start_plane` (kill for processes, replicas 0 on a cluster)."""

    async def stop_database(self) -> None:
        """Make PostgreSQL unreachable for every plane."""

    async def start_database(self) -> None:
        """Make PostgreSQL reachable again."""

    async def partition(self, plane: Plane, mode: ProxyMode) -> None:
        """Cut PostgreSQL from `plane` alone; `ProxyMode.PASS` heals the partition."""

    def role_dsn(self, plane: Plane) -> str:
        """DSN of `plane`'s role; only with `PLANE_ROLE_ACCESS`."""

    def master_secret_file(self, plane: Plane) -> str:
        """Path of `plane`'s master secret file; only with `PLANE_ROLE_ACCESS`."""

    def pin_load(self, pid: int) -> None:
        """Pin a load generator aimed at the auth plane to that plane's CPU, where there is one."""
