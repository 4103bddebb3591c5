"""The staging driver: the drill's faults as kubectl commands on the split topology.

Names follow deploy/kubernetes/overlays/split: each plane runs in namespace
`appliance-<plane>` as workload `appliance` (a StatefulSet for break-glass, a
Deployment otherwise), its pods labelled `app.kubernetes.io/component=<plane>`,
and NetworkPolicy `appliance` allows egress to PostgreSQL on port 5432.
The PostgreSQL server itself is not ours in staging, so "stop the database"
cuts it from every plane with that NetworkPolicy instead.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.settings import Plane
from chaos.proxy import ProxyMode

POSTGRES_PORT = 5432
ROLLOUT_TIMEOUT = "120s"

# Runs one command (argv, stdin) and returns its stdout; raises on a non-zero exit.
CommandRunner = Callable[[list[str], str | None], Awaitable[str]]


class KubectlError(Exception):
    pass


async def run_kubectl(argv: list[str], stdin: str | None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise KubectlError(f"{' '.join(argv)} exited {process.returncode}: {err.decode().strip()}")
    return out.decode()


def namespace(plane: Plane) -> str:
    return f"appliance-{plane.value}"


def workload(plane: Plane) -> str:
    kind = "statefulset" if plane is Plane.BREAKGLASS else "deployment"
    return f"{kind}/appliance"


def without_postgres_egress(policy: dict[str, Any]) -> dict[str, Any]:
    """Return `policy` with every egress rule that opens the PostgreSQL port removed."""
    cut = without_server_fields(policy)
    cut["spec"]["egress"] = [
        rule
        for rule in cut["spec"].get("egress", [])
        if not any(port.get("port") == POSTGRES_PORT for port in rule.get("ports", []))
    ]
    return cut


class KubernetesDriver:
    """Act on a cluster with kubectl; every command goes through `runner`."""

    def __init__(
        self,
        *,
        kubectl: str = "kubectl",
        context: str | None = None,
        runner: CommandRunner = run_kubectl,
        replicas: int = 2,
    ) -> None:
        self.base = [kubectl, *(["--context", context] if context else [])]
        self.runner = runner
        self.replicas = replicas
        self._saved_policies: dict[Plane, dict[str, Any]] = {}
        self._scaled_down: set[Plane] = set()

    async def _kubectl(self, *args: str, stdin: str | None = None) -> str:
        return await self.runner([*self.base, *args], stdin)

    async def kill_plane(self, plane: Plane) -> None:
        await self._kubectl(
            "--namespace",
            namespace(plane),
            "delete",
            "pod",
            "--selector",
            f"app.kubernetes.io/component={plane.value}",
            "--grace-period=0",
            "--force",
            "--wait=false",
        )

    async def scale_down_plane(self, plane: Plane) -> None:
        await self._kubectl(
            "--namespace", namespace(plane), "scale", workload(plane), "--replicas=0"
        )
        self._scaled_down.add(plane)

    async def start_plane(self, plane: Plane) -> float:
        began = time.monotonic()
        if plane in self._scaled_down:
            await self._kubectl(
                "--namespace",
                namespace(plane),
                "scale",
                workload(plane),
                f"--replicas={self.replicas}",
            )
            self._scaled_down.discard(plane)
        await self._kubectl(
            "--namespace",
            namespace(plane),
            "rollout",
            "status",
            workload(plane),
            f"--timeout={ROLLOUT_TIMEOUT}",
        )
        return time.monotonic() - began

    async def stop_database(self) -> None:
        for plane in Plane:
            await self.partition(plane, ProxyMode.DROP)

    async def start_database(self) -> None:
        for plane in Plane:
            await self.partition(plane, ProxyMode.PASS)

    async def partition(self, plane: Plane, mode: ProxyMode) -> None:
        # A NetworkPolicy cannot stall a connection, so STALL cuts it like DROP here.
        if mode is ProxyMode.PASS:
            saved = self._saved_policies.pop(plane, None)
            if saved is not None:
                await self._apply(saved)
            return
        if plane in self._saved_policies:
            return
        current = json.loads(
            await self._kubectl(
                "--namespace",
                namespace(plane),
                "get",
                "networkpolicy",
                "appliance",
                "--output=json",
            )
        )
        self._saved_policies[plane] = without_server_fields(current)
        await self._apply(without_postgres_egress(current))

    async def _apply(self, policy: dict[str, Any]) -> None:
        await self._kubectl("apply", "--filename=-", stdin=json.dumps(policy))


def without_server_fields(policy: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(policy)
    for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        clean.get("metadata", {}).pop(field, None)
    clean.pop("status", None)
    return clean
