"""The drill's scenarios: each breaks one thing while the workload runs, then restores it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from appliance.db.migrate import plane_role
from appliance.db.queries.admin import ADMIN_ROTATION_REQUEST_INSERT, ADMIN_ROTATION_REQUESTS_LIST
from appliance.db.tenancy import set_org
from appliance.settings import Plane
from chaos.drivers import PLANE_ROLE_ACCESS
from chaos.invariants import percentile
from chaos.proxy import ProxyMode
from chaos.runner import Drill
from chaos.streams import GetProbe, PimStream

PLANES = [Plane.AUTH, Plane.ADMIN, Plane.PIM, Plane.BREAKGLASS]
ROTATION_TIMEOUT_SECONDS = 30.0
PROBE_INTERVAL_SECONDS = 0.05
LOAD_CONCURRENCY = 48


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Drill], Awaitable[None]]
    # Driver capabilities (chaos.drivers) the scenario needs beyond the common methods.
    needs: frozenset[str] = frozenset()


async def kill_each_plane(drill: Drill) -> None:
    for plane in PLANES:
        await drill.kill(plane)
        await drill.hold(drill.pace.fault / 2)
        await drill.restart(plane)
        await drill.hold(drill.pace.settle)


async def _kill_all_but(drill: Drill, survivor: Plane) -> None:
    others = [plane for plane in PLANES if plane is not survivor]
    for plane in others:
        await drill.take_down(plane)
    await drill.hold(drill.pace.fault)
    for plane in others:
        await drill.restart(plane)


async def kill_all_but_breakglass(drill: Drill) -> None:
    await _kill_all_but(drill, Plane.BREAKGLASS)


async def kill_all_but_pim(drill: Drill) -> None:
    await _kill_all_but(drill, Plane.PIM)


async def postgres_stop_start(drill: Drill) -> None:
    await drill.stop_database()
    await drill.hold(drill.pace.fault)
    await drill.start_database()


async def partition_postgres(drill: Drill) -> None:
    """Drop, then stall, break-glass's connections to PostgreSQL; then drop PIM's."""
    for mode in (ProxyMode.DROP, ProxyMode.STALL):
        drill.recorder.fault(f"partition breakglass ({mode.value})")
        await drill.driver.partition(Plane.BREAKGLASS, mode)
        await drill.hold(drill.pace.fault)
        drill.recorder.fault("heal breakglass")
        await drill.driver.partition(Plane.BREAKGLASS, ProxyMode.PASS)
        await drill.wait_replayed()
    drill.recorder.fault("partition pim (drop)")
    drill.recorder.excuse("pim")
    await drill.driver.partition(Plane.PIM, ProxyMode.DROP)
    await drill.hold(drill.pace.fault / 2)
    drill.recorder.fault("heal pim")
    await drill.driver.partition(Plane.PIM, ProxyMode.PASS)
    waited = await drill.wait_ready(Plane.PIM)
    drill.current.notes.append(f"pim ready {waited:.2f}s after its partition healed")
    drill.recorder.unexcuse("pim")


async def _p99_window(drill: Drill, seconds: float) -> dict[str, float | None]:
    """Run latency probes on PIM issuance and the break-glass plane for `seconds`; return p99s."""
    assert drill.pim_checker is not None
    probes = [
        PimStream(
            drill.recorder,
            PROBE_INTERVAL_SECONDS,
            client=drill.client,
            url=drill.driver.url(Plane.PIM),
            org=drill.org_name,
            token=drill.pim_token,
            request_id=drill.pim_request_id,
            checker=drill.pim_checker,
            max_lifetime=3600,
        ),
        GetProbe(
            drill.recorder,
            PROBE_INTERVAL_SECONDS,
            name="breakglass-jwks",
            client=drill.client,
            url=f"{drill.driver.url(Plane.BREAKGLASS)}/o/{drill.org_name}/breakglass/jwks.json",
        ),
    ]
    probes[0].name = "pim-probe"
    for probe in probes:
        probe.max_outstanding = 1
    started = drill.recorder.now()
    for probe in probes:
        probe.start()
    await drill.hold(seconds)
    for probe in probes:
        await probe.stop()
    return {
        probe.name: percentile(
            [
                s.latency_ms
                for s in drill.recorder.samples
                if s.stream == probe.name and s.ok and s.at >= started
            ],
            0.99,
        )
        for probe in probes
    }


async def _exhaust_auth_pool(drill: Drill) -> list[asyncpg.Connection]:
    """Open connections as the auth plane's role until PostgreSQL refuses more."""
    dsn = drill.driver.role_dsn(Plane.AUTH)
    held: list[asyncpg.Connection] = []
    while len(held) < 200:
        try:
            held.append(await asyncpg.connect(dsn))
        except asyncpg.TooManyConnectionsError:
            break
    return held


async def _start_auth_load(
    drill: Drill, concurrency: int, seconds: float
) -> asyncio.subprocess.Process:
    """Start `chaos.load` against the auth token endpoint, pinned to the auth plane's CPU."""
    confidential = drill.drill_org.confidential_client
    load = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chaos.load",
        f"{drill.driver.url(Plane.AUTH)}/o/{drill.org_name}/token",
        confidential["client_id"],
        str(concurrency),
        str(seconds),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    drill.driver.pin_load(load.pid)
    assert load.stdin is not None
    # The secret goes on stdin, so it is not in the process list.
    load.stdin.write((confidential["client_secret"] + "\n").encode())
    await load.stdin.drain()
    load.stdin.close()
    return load


async def _finish_load(load: asyncio.subprocess.Process) -> dict[str, int]:
    """Wait for the load generator and return its counts; kill it if the drill is cancelled."""
    try:
        out, _ = await load.communicate()
    finally:
        if load.returncode is None:
            load.kill()
            await load.wait()
    counts: dict[str, int] = json.loads(out or b"{}")
    return counts


async def saturate_auth(drill: Drill) -> None:
    """Flood the auth token endpoint, hold every connection of its role, measure the others."""
    baseline = await _p99_window(drill, drill.pace.saturate)

    drill.recorder.fault("saturate auth")
    held = await _exhaust_auth_pool(drill)
    load = await _start_auth_load(drill, LOAD_CONCURRENCY, drill.pace.saturate + 2)
    try:
        await drill.hold(1.0)
        loaded = await _p99_window(drill, drill.pace.saturate)
    finally:
        counts = await _finish_load(load)
        for conn in held:
            await conn.close()
    drill.recorder.fault("auth load ends")

    drill.current.notes.append(
        f"held {len(held)} connections as "
        f"{plane_role(Plane.AUTH, drill.driver.role_prefix)} (its CONNECTION LIMIT); "
        f"the load generator sent {counts.get('ok', 0)} successful and "
        f"{counts.get('failed', 0)} failed token requests"
    )
    for name in baseline:
        drill.saturation.append((name, baseline[name], loaded[name]))


async def _rotate_auth_key(drill: Drill) -> str:
    """Run `appliance keys rotate --plane auth` as an operator would; return the new active kid."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE_")}
    env["APPLIANCE_AUTH_DATABASE_URL"] = drill.driver.role_dsn(Plane.AUTH)
    env["APPLIANCE_AUTH_MASTER_SECRET_FILE"] = drill.driver.master_secret_file(Plane.AUTH)
    rotated = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "keys",
        "rotate",
        "--plane",
        "auth",
        "--org",
        drill.org_name,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await rotated.communicate()
    if rotated.returncode != 0:
        raise RuntimeError(f"appliance keys rotate failed: {err.decode().strip()}")
    return str(json.loads(out).get("activated"))


async def _rotate_breakglass_key(drill: Drill) -> str:
    """Insert a break-glass rotation request and wait for the plane's job; return the new kid."""
    conn = await asyncpg.connect(drill.driver.admin_dsn)
    try:
        async with conn.transaction():
            await set_org(conn, drill.drill_org.id)
            row = await conn.fetchrow(
                ADMIN_ROTATION_REQUEST_INSERT,
                drill.drill_org.id,
                "breakglass",
                "chaos-drill",
                datetime.now(UTC),
                "chaos drill",
            )
        if row is None:
            raise RuntimeError("a break-glass rotation request is already pending")

        deadline = asyncio.get_running_loop().time() + ROTATION_TIMEOUT_SECONDS
        while True:
            recent = await conn.fetch(ADMIN_ROTATION_REQUESTS_LIST, drill.drill_org.id, 10)
            status = next((r for r in recent if r["id"] == row["id"]), None)
            if status is not None and status["status"] != "pending":
                break
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"the break-glass plane did not process rotation request {row['id']} "
                    f"within {ROTATION_TIMEOUT_SECONDS:.0f}s; check its breakglass.keys job"
                )
            await asyncio.sleep(0.5)
    finally:
        await conn.close()

    if status["status"] != "completed":
        raise RuntimeError(f"break-glass rotation failed: {status['failure_reason']}")
    return str(status["new_kid"])


async def rotate_keys(drill: Drill) -> None:
    """Rotate the auth key with `appliance keys rotate` and the break-glass key by a request row."""
    if PLANE_ROLE_ACCESS in drill.driver.capabilities:
        drill.recorder.fault("rotate auth key")
        auth_kid = await _rotate_auth_key(drill)
        drill.current.notes.append(f"auth rotation: new kid {auth_kid}")
    else:
        drill.current.notes.append(
            "auth key not rotated: `appliance keys rotate` needs the auth role's DSN and "
            "master secret, which this driver does not hold"
        )

    drill.recorder.fault("request break-glass key rotation")
    breakglass_kid = await _rotate_breakglass_key(drill)
    drill.recorder.fault(f"break-glass key rotated to {breakglass_kid}")
    await drill.hold(drill.pace.fault)


async def restart_under_load(drill: Drill) -> None:
    """Kill and restart break-glass, then PIM, while the auth plane is flooded."""
    load = await _start_auth_load(drill, 16, drill.pace.fault * 2 + 4)
    drill.recorder.fault("auth load starts")
    try:
        for plane in (Plane.BREAKGLASS, Plane.PIM):
            await drill.kill(plane)
            await drill.hold(drill.pace.fault / 2)
            await drill.restart(plane)
    finally:
        await _finish_load(load)
    drill.recorder.fault("auth load ends")


SCENARIOS: list[Scenario] = [
    Scenario(
        "kill-one-plane",
        "SIGKILL each plane in turn (auth, admin, pim, breakglass) and restart it; "
        "the others keep serving",
        kill_each_plane,
    ),
    Scenario(
        "kill-all-but-breakglass",
        "SIGKILL auth, admin and pim at once; break-glass keeps issuing; then restart them",
        kill_all_but_breakglass,
    ),
    Scenario(
        "kill-all-but-pim",
        "SIGKILL auth, admin and breakglass at once; PIM keeps issuing; then restart them",
        kill_all_but_pim,
    ),
    Scenario(
        "postgres-stop-start",
        "stop PostgreSQL (fast shutdown; a server given by --database-url is cut from "
        "every plane instead); break-glass issues from its snapshot and journals; "
        "start PostgreSQL; the journal replays",
        postgres_stop_start,
    ),
    Scenario(
        "partition-postgres",
        "a proxy drops, then stalls, break-glass's PostgreSQL connections, then "
        "drops PIM's; the other planes are unaffected",
        partition_postgres,
    ),
    Scenario(
        "saturate-auth",
        "flood the auth token endpoint and hold every connection its role may open; "
        "PIM and break-glass p99 latency rises by at most 50%",
        saturate_auth,
        needs=frozenset({PLANE_ROLE_ACCESS}),
    ),
    Scenario(
        "rotate-keys-mid-drill",
        "rotate the auth signing key with `appliance keys rotate` (local drills only) and "
        "the break-glass key through a rotation request; credentials keep verifying",
        rotate_keys,
    ),
    Scenario(
        "restart-under-load",
        "SIGKILL and restart break-glass, then PIM, while the auth plane is "
        "flooded; each serves again within 2 s",
        restart_under_load,
    ),
]

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
SHORT = ["kill-one-plane", "postgres-stop-start"]
