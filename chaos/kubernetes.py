"""The staging driver: the drill's faults as kubectl commands on the split topology.

Names follow deploy/kubernetes/overlays/split: each plane runs in namespace
`appliance-<plane>` as workload `appliance` (a StatefulSet for break-glass, a
Deployment otherwise), its pods labelled `app.kubernetes.io/component=<plane>`,
and NetworkPolicy `appliance` allows egress to PostgreSQL on port 5432.
The PostgreSQL server itself is not ours in staging, so "stop the database"
cuts it from every plane with that NetworkPolicy instead.

The workload reaches the planes at their public URLs (the Gateway's host
names), and the drill seeds its org through a DSN of the deployment's database.
It has no plane role password or master secret, so scenarios that need them
(`chaos.drivers.PLANE_ROLE_ACCESS`) do not run on this driver.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import httpx

from appliance.db.migrate import DEFAULT_ROLE_PREFIX
from appliance.log import log_fields
from appliance.settings import Plane
from chaos.database import DrillDatabaseError, check_privileges
from chaos.org import published_seal_keys
from chaos.proxy import ProxyMode

log = logging.getLogger("chaos.kubernetes")

POSTGRES_PORT = 5432
ROLLOUT_TIMEOUT = "120s"

# Runs one command (argv, stdin) and returns its stdout; raises on a non-zero exit.
CommandRunner = Callable[[list[str], str | None], Awaitable[str]]


class KubectlError(RuntimeError):
    """A kubectl command exited non-zero; the message has the command and its stderr."""


class NotAvailable(RuntimeError):
    """The Kubernetes driver has no plane role password or master secret for this."""


async def run_kubectl(argv: list[str], stdin: str | None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        # Without input, stdin is closed, so a command that reads it cannot hang the drill.
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
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
    """Act on a cluster with kubectl; every command goes through `runner`.

    `urls` maps each plane to its public base URL, and `database_url` is a DSN
    of the deployment's database for a superuser or a role with BYPASSRLS.
    """

    stops_database = False
    role_prefix = DEFAULT_ROLE_PREFIX
    capabilities: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        urls: Mapping[Plane, str] | None = None,
        database_url: str = "",
        kubectl: str = "kubectl",
        context: str | None = None,
        runner: CommandRunner = run_kubectl,
        replicas: int = 2,
    ) -> None:
        self.urls = {plane: url.rstrip("/") for plane, url in (urls or {}).items()}
        self.database_url = database_url
        self.base = [kubectl, *(["--context", context] if context else [])]
        self.runner = runner
        self.replicas = replicas
        self._saved_policies: dict[Plane, dict[str, Any]] = {}
        self._scaled_down: set[Plane] = set()

    async def _kubectl(self, *args: str, stdin: str | None = None) -> str:
        return await self.runner([*self.base, *args], stdin)

    # Reaching the deployment

    @property
    def admin_dsn(self) -> str:
        return self.database_url

    def url(self, plane: Plane) -> str:
        return self.urls[plane]

    async def setup(self, seed: Callable[[], Awaitable[None]]) -> None:
        """Check kubectl, the planes' URLs and the database, then call `seed`."""
        missing = [plane.value for plane in Plane if plane not in self.urls]
        if missing:
            raise NotAvailable(f"no URL for plane {', '.join(missing)}")
        for plane in Plane:
            await self._kubectl(
                "--namespace", namespace(plane), "get", workload(plane), "--output=name"
            )
        async with httpx.AsyncClient() as client:
            for plane in Plane:
                await _check_serving(client, plane, self.url(plane))
        try:
            conn = await asyncpg.connect(self.database_url, timeout=10)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            raise DrillDatabaseError(
                f"cannot connect to the deployment's database: {error}"
            ) from None
        try:
            await check_privileges(conn, ("BYPASSRLS",))
        finally:
            await conn.close()
        await seed()

    async def teardown(self) -> None:
        """Restore every NetworkPolicy the drill cut and every workload it scaled down."""
        for plane in list(self._saved_policies):
            await self.partition(plane, ProxyMode.PASS)
        for plane in list(self._scaled_down):
            await self.start_plane(plane)

    async def seal_public_keys(self, conn: asyncpg.Connection) -> dict[Plane, bytes]:
        return await published_seal_keys(conn)

    def role_dsn(self, plane: Plane) -> str:
        raise NotAvailable(f"the Kubernetes driver has no password for the {plane.value} role")

    def master_secret_file(self, plane: Plane) -> str:
        raise NotAvailable(f"the Kubernetes driver has no {plane.value} master secret")

    def pin_load(self, pid: int) -> None:
        """Leave the load generator where it is: the auth plane runs on its own nodes."""

    # Faults

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


async def _check_serving(client: httpx.AsyncClient, plane: Plane, url: str) -> None:
    try:
        response = await client.get(f"{url}/healthz", timeout=10.0)
    except httpx.HTTPError as error:
        raise NotAvailable(f"the {plane.value} plane at {url} is unreachable: {error}") from None
    if response.status_code != 200:
        raise NotAvailable(
            f"the {plane.value} plane at {url} returned {response.status_code} for /healthz; "
            "check the URL and that the plane runs"
        )
    log.info("plane reachable", extra=log_fields(plane=plane.value, url=url))


def without_server_fields(policy: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(policy)
    for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        clean.get("metadata", {}).pop(field, None)
    clean.pop("status", None)
    return clean
