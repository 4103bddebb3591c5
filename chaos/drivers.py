"""The interface a drill uses to break and restore a deployment.

`chaos.local.LocalDriver` acts on processes on this machine, and
`chaos.kubernetes.KubernetesDriver` acts on a cluster through kubectl.
The kill, restart, database and partition scenarios call only these methods.
NOTE: saturate-auth and rotate-keys-mid-drill also use the local driver's data
folder and database role passwords, so they run locally only.
"""

from __future__ import annotations

from typing import Protocol

from appliance.settings import Plane
from chaos.proxy import ProxyMode


class UnsupportedFault(Exception):
    """The driver cannot cause this fault (for example, stopping an external PostgreSQL)."""


class Driver(Protocol):
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
