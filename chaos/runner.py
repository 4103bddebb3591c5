"""The drill: set up the workload, run scenarios, check invariants, write the report."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from appliance.identity.totp import STEP_SECONDS, code_at
from appliance.log import log_fields
from appliance.pim.demo import APPROVERS, DEMO_ROLE, REQUESTER
from appliance.settings import Plane
from chaos import invariants
from chaos.drivers import Driver
from chaos.npm_verifier import NpmVerifier
from chaos.org import DrillOrg, create_drill_org
from chaos.streams import AuthStream, BreakglassStream, PimStream, Stream
from chaos.workload import CredentialChecker, Recorder

log = logging.getLogger("chaos.runner")

# The plane accepts the previous, current and next TOTP step, each once and in
# increasing order. After a burst of three, an account yields one code per
# 30-second step, so 36 accounts carry one activation per second with room to spare.
BREAKGLASS_ACCOUNTS = 36
BREAKGLASS_TTL_SECONDS = 300
PIM_DURATION_SECONDS = 3600
REPLAY_TIMEOUT_SECONDS = 60.0
STREAM_OF_PLANE = {Plane.AUTH: "auth", Plane.PIM: "pim", Plane.BREAKGLASS: "breakglass"}


@dataclass
class Pace:
    """Seconds each scenario keeps a fault in place. `short()` is the CI drill's pace."""

    fault: float = 8.0
    settle: float = 3.0
    saturate: float = 10.0

    @classmethod
    def short(cls) -> Pace:
        return cls(fault=4.0, settle=2.0, saturate=6.0)


@dataclass
class ScenarioResult:
    name: str
    description: str
    started: float
    finished: float
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Drill:
    """One drill run: a driver, the steady workload and what was observed."""

    def __init__(self, driver: Driver, *, pace: Pace | None = None) -> None:
        self.driver = driver
        self.pace = pace or Pace()
        self.recorder = Recorder()
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=50))
        self.npm = NpmVerifier()
        self.streams: list[Stream] = []
        self.restarts: list[tuple[str, str, float]] = []
        self.saturation: list[tuple[str, float | None, float | None]] = []
        self.results: list[ScenarioResult] = []
        self.org: DrillOrg | None = None
        self.pim_checker: CredentialChecker | None = None
        self.pim_token = ""
        self.pim_request_id = ""

    # Set-up and tear-down

    async def setup(self) -> None:
        await self.driver.setup(seed=self._create_org)
        await self._start_pim_grant()
        bg_url = self.driver.url(Plane.BREAKGLASS)
        bg_checker = CredentialChecker(
            self.client, f"{bg_url}/o/{self.org_name}/breakglass", self.npm, self.recorder
        )
        assert self.pim_checker is not None
        confidential = self.drill_org.confidential_client
        self.streams = [
            BreakglassStream(
                self.recorder,
                1.0,
                client=self.client,
                url=bg_url,
                org=self.org_name,
                accounts=self.drill_org.accounts,
                checker=bg_checker,
                ttl_seconds=BREAKGLASS_TTL_SECONDS,
            ),
            PimStream(
                self.recorder,
                1.0,
                client=self.client,
                url=self.driver.url(Plane.PIM),
                org=self.org_name,
                token=self.pim_token,
                request_id=self.pim_request_id,
                checker=self.pim_checker,
                max_lifetime=PIM_DURATION_SECONDS,
            ),
            AuthStream(
                self.recorder,
                0.25,
                client=self.client,
                url=self.driver.url(Plane.AUTH),
                org=self.org_name,
                client_id=confidential["client_id"],
                client_secret=confidential["client_secret"],
            ),
        ]
        for stream in self.streams:
            stream.start()

    async def teardown(self) -> None:
        for stream in self.streams:
            await stream.stop()
        await self.client.aclose()
        await self.driver.teardown()

    @property
    def drill_org(self) -> DrillOrg:
        assert self.org is not None, "the drill's org is created in setup"
        return self.org

    @property
    def org_name(self) -> str:
        return self.drill_org.name

    async def _create_org(self) -> None:
        """Create the drill's org, with enough break-glass accounts for one activation a second."""
        conn = await asyncpg.connect(self.driver.admin_dsn)
        try:
            seal_keys = await self.driver.seal_public_keys(conn)
            self.org = await create_drill_org(
                conn,
                seal_keys,
                accounts=BREAKGLASS_ACCOUNTS,
                ttl_seconds=BREAKGLASS_TTL_SECONDS,
            )
        finally:
            await conn.close()

    async def _pim_call(self, method: str, path: str, body: Any, token: str | None = None) -> Any:
        url = f"{self.driver.url(Plane.PIM)}/o/{self.org_name}/pim/{path}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.request(method, url, json=body, headers=headers, timeout=15.0)
        if response.status_code >= 400:
            raise RuntimeError(
                f"PIM set-up call {method} {path} failed: {response.status_code} "
                f"{response.text[:300]}"
            )
        return response.json()

    async def _start_pim_grant(self) -> None:
        """alice requests the demo role, bob and carol approve: an active grant for the drill."""
        tokens: dict[str, str] = {}
        step = int(time.time() // STEP_SECONDS)
        for name in (REQUESTER, *APPROVERS):
            user = self.drill_org.pim_users[name]
            session = await self._pim_call(
                "POST",
                "session",
                {
                    "username": name,
                    "password": user["password"],
                    "totp": code_at(user["totp_secret"], step),
                },
            )
            tokens[name] = session["token"]
        request = await self._pim_call(
            "POST",
            "api/requests",
            {
                "role": DEMO_ROLE,
                "duration_seconds": PIM_DURATION_SECONDS,
                "justification": "chaos drill",
                "ticket": "CHAOS-1",
            },
            tokens[REQUESTER],
        )
        for approver in APPROVERS:
            await self._pim_call(
                "POST",
                f"api/requests/{request['id']}/approve",
                {"comment": "chaos drill"},
                tokens[approver],
            )
        self.pim_token = tokens[REQUESTER]
        self.pim_request_id = request["id"]
        self.pim_checker = CredentialChecker(
            self.client,
            f"{self.driver.url(Plane.PIM)}/o/{self.org_name}/pim",
            self.npm,
            self.recorder,
        )

    # Actions used by scenarios

    async def hold(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def kill(self, plane: Plane) -> None:
        self.recorder.fault(f"SIGKILL {plane.value}")
        if plane in STREAM_OF_PLANE:
            self.recorder.excuse(STREAM_OF_PLANE[plane])
        await self.driver.kill_plane(plane)

    async def take_down(self, plane: Plane) -> None:
        """Keep `plane` down until `restart`: a SIGKILL locally, zero replicas on Kubernetes."""
        self.recorder.fault(f"take down {plane.value}")
        if plane in STREAM_OF_PLANE:
            self.recorder.excuse(STREAM_OF_PLANE[plane])
        await self.driver.scale_down_plane(plane)

    async def restart(self, plane: Plane) -> float:
        self.recorder.fault(f"restart {plane.value}")
        seconds = await self.driver.start_plane(plane)
        self.restarts.append((self.recorder.scenario, plane.value, seconds))
        if plane in STREAM_OF_PLANE:
            self.recorder.unexcuse(STREAM_OF_PLANE[plane])
        return seconds

    async def stop_database(self) -> None:
        stops = self.driver.stops_database
        self.recorder.fault("stop PostgreSQL" if stops else "cut PostgreSQL from every plane")
        self.recorder.excuse("pim")
        self.recorder.excuse("auth")
        await self.driver.stop_database()

    async def start_database(self) -> None:
        starts = self.driver.stops_database
        self.recorder.fault("start PostgreSQL" if starts else "reconnect PostgreSQL")
        await self.driver.start_database()
        for plane in (Plane.PIM, Plane.AUTH):
            waited = await self.wait_ready(plane)
            self.current.notes.append(
                f"{plane.value} ready {waited:.2f}s after PostgreSQL came back"
            )
            self.recorder.unexcuse(STREAM_OF_PLANE[plane])

    async def wait_ready(self, plane: Plane, limit_seconds: float = 30.0) -> float:
        began = time.monotonic()
        while time.monotonic() - began < limit_seconds:
            try:
                response = await self.client.get(f"{self.driver.url(plane)}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{plane.value} /readyz not 200 within {limit_seconds:.0f}s")

    async def wait_replayed(self) -> None:
        """Wait until break-glass reaches PostgreSQL again and its journal backlog is empty."""
        deadline = time.monotonic() + REPLAY_TIMEOUT_SECONDS
        last: Any = None
        while time.monotonic() < deadline:
            try:
                response = await self.client.get(
                    f"{self.driver.url(Plane.BREAKGLASS)}/readyz", timeout=2.0
                )
                last = response.json().get("planes", {}).get("breakglass", {})
                if last.get("database") == "reachable" and not last.get("journal_backlog"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(
            f"break-glass journal not replayed after {REPLAY_TIMEOUT_SECONDS:.0f}s: {last}"
        )

    # Running scenarios

    @property
    def current(self) -> ScenarioResult:
        return self.results[-1]

    async def run(self, scenario: Any) -> ScenarioResult:
        self.recorder.scenario = scenario.name
        result = ScenarioResult(scenario.name, scenario.description, self.recorder.now(), 0.0)
        self.results.append(result)
        self.recorder.fault("scenario starts")
        try:
            await scenario.run(self)
            await self.hold(self.pace.settle)
            await self.wait_replayed()
        except (RuntimeError, OSError, asyncpg.PostgresError, httpx.HTTPError) as error:
            log.warning(
                "scenario failed", extra=log_fields(scenario=scenario.name, error=str(error))
            )
            result.problems.append(f"scenario failed: {error}")
        result.finished = self.recorder.now()
        await asyncio.sleep(0.5)
        conn = await asyncpg.connect(self.driver.admin_dsn)
        try:
            result.problems += await invariants.audit_check(
                conn, self.drill_org.id, self.recorder, scenario.name
            )
        finally:
            await conn.close()
        return result

    def outcomes(self) -> list[invariants.Outcome]:
        audit_problems = [p for r in self.results for p in r.problems]
        ran = {r.name for r in self.results}
        outcomes = [
            invariants.always_issues(
                self.recorder,
                "breakglass",
                "breakglass-always-issues",
                "break-glass issues a valid, time-bounded credential on every attempt",
            ),
            invariants.always_issues(
                self.recorder,
                "pim",
                "pim-issues-while-postgres-up",
                "PIM issues credentials for the active grant whenever PostgreSQL "
                "is up and the PIM plane runs",
            ),
            invariants.independent_verifier(self.recorder, self.npm.available),
            invariants.lifetime_policy(self.recorder),
            invariants.Outcome(
                "audit-no-loss-no-duplicate",
                "every acknowledged credential is in the audit chain exactly once, and the "
                "chain verifies, after each scenario",
                not audit_problems,
                audit_problems[:30],
            ),
        ]
        if self.restarts:
            outcomes.append(invariants.restart_times(self.restarts))
        if "saturate-auth" in ran:
            outcomes.append(invariants.saturation(self.saturation))
        return outcomes

    def result_json(self) -> dict[str, Any]:
        outcomes = self.outcomes()
        return {
            "finished_at": datetime.now(UTC).isoformat(),
            "passed": all(o.passed for o in outcomes),
            "duration_seconds": round(self.recorder.now(), 1),
            "invariants": [o.to_json() for o in outcomes],
            "scenarios": [r.__dict__ for r in self.results],
            "faults": [f.__dict__ for f in self.recorder.faults],
            "restarts": [
                {"scenario": s, "plane": p, "seconds": round(t, 3)} for s, p, t in self.restarts
            ],
            "latency_ms": latency_table(self.recorder),
            "samples": [s.__dict__ for s in self.recorder.samples],
        }


def latency_table(recorder: Recorder) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for stream in sorted({s.stream for s in recorder.samples}):
        ok = [s.latency_ms for s in recorder.samples if s.stream == stream and s.ok]
        total = sum(1 for s in recorder.samples if s.stream == stream)
        table[stream] = {
            "attempts": total,
            "succeeded": len(ok),
            "p50": invariants.percentile(ok, 0.5),
            "p99": invariants.percentile(ok, 0.99),
            "max": max(ok) if ok else None,
        }
    return table


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", "utf-8")
