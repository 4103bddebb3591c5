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
from chaos.database import INVALID_PORT, DrillDatabaseError, check_privileges
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
    try:
        process = await _start(argv, stdin)
    except OSError as error:
        raise KubectlError(f"cannot run {argv[0]}: {error.strerror}; check --kubectl") from None
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise KubectlError(f"{' '.join(argv)} exited {process.returncode}: {err.decode().strip()}")
    return out.decode()


async def _start(argv: list[str], stdin: str | None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        # Without input, stdin is closed, so a command that reads it cannot hang the drill.
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


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
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError) as error:
            # ValueError: an unescaped / or # in the password; its text may quote the password.
            reason = INVALID_PORT if isinstance(error, ValueError) else str(error)
            raise DrillDatabaseError(
                f"cannot connect to the deployment's database: {reason}"
            ) from None
        try:
            await check_privileges(conn, ("BYPASSRLS",))
        finally:
            await conn.close()
        try:
            await seed()
        except asyncpg.UndefinedTableError:
            raise DrillDatabaseError(
                "--database-url reaches a database without the appliance schema; "
                "give the DSN of the deployment's database"
            ) from None
        except asyncpg.InsufficientPrivilegeError as error:
            raise DrillDatabaseError(
                f"the role of --database-url cannot seed the drill's org ({error}); "
                "use the role that owns the schema, with BYPASSRLS, or a superuser"
            ) from None

    async def teardown(self) -> None:
        """Restore every NetworkPolicy the drill cut and every workload it scaled down.

        Tries each restore even when one fails, then raises `KubectlError` naming
        what is still cut or scaled down and the saved policy to apply by hand.
        """
        failures: list[str] = []
        for plane in list(self._saved_policies):
            saved = self._saved_policies[plane]
            try:
                await self.partition(plane, ProxyMode.PASS)
            except KubectlError as error:
                failures.append(
                    f"{namespace(plane)} is still cut from PostgreSQL ({error}); apply this "
                    f"saved policy with `kubectl apply --filename=-`: {json.dumps(saved)}"
                )
        for plane in list(self._scaled_down):
            try:
                await self.start_plane(plane)
            except KubectlError as error:
                failures.append(
                    f"{namespace(plane)} {workload(plane)} may still be scaled down ({error}); "
                    f"run kubectl --namespace {namespace(plane)} scale {workload(plane)} "
                    f"--replicas={self.replicas}"
                )
        if failures:
            raise KubectlError("restoring the cluster failed: " + " | ".join(failures))

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
        # Break-glass pods belong to a StatefulSet, and force-deleting one can start
        # its replacement while the old pod still writes the journal on the same
        # volume. So they get one second of grace instead of --force.
        grace = (
            ["--grace-period=1"] if plane is Plane.BREAKGLASS else ["--grace-period=0", "--force"]
        )
        await self._kubectl(
            "--namespace",
            namespace(plane),
            "delete",
            "pod",
            "--selector",
            f"app.kubernetes.io/component={plane.value}",
            *grace,
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
            saved = self._saved_policies.get(plane)
            if saved is not None:
                await self._apply(saved)
                del self._saved_policies[plane]
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
        cut = without_postgres_egress(current)
        if cut["spec"].get("egress") == current["spec"].get("egress"):
            raise KubectlError(
                f"NetworkPolicy appliance in {namespace(plane)} has no egress rule for port "
                f"{POSTGRES_PORT}, so removing one cannot cut PostgreSQL"
            )
        self._saved_policies[plane] = without_server_fields(current)
        await self._apply(cut)

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
