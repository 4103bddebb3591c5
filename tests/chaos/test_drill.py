"""The CI drill: plane kills and a PostgreSQL stop against real processes.

Each test starts its own embedded PostgreSQL and four plane processes on
127.0.0.1, so it needs the PostgreSQL server binaries that `appliance up` uses,
and Node with tests/interop/node_modules. Each drill takes 20 to 40 seconds here.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from appliance.settings import Plane
from chaos.run import run_drill
from chaos.runner import Pace

# Loaded by the break-glass plane's interpreter at start (site imports
# `sitecustomize` from PYTHONPATH): it makes the offline activation path raise,
# the way a build that made break-glass depend on PostgreSQL would fail.
SABOTAGE = """
from appliance.breakglass.offline import OfflineActivator


async def _depends_on_postgres(self, *args, **kwargs):
    raise RuntimeError("sabotaged build: break-glass needs PostgreSQL")


OfflineActivator.activate = _depends_on_postgres
"""


def invariant(result: dict, name: str) -> dict:
    return next(item for item in result["invariants"] if item["name"] == name)


async def test_short_drill_holds_every_invariant(tmp_path: Path) -> None:
    outcome = await run_drill(
        ["kill-one-plane", "postgres-stop-start"], report_dir=tmp_path / "report", pace=Pace.short()
    )

    failed = [i for i in outcome.result["invariants"] if not i["passed"]]
    assert failed == [], json.dumps(failed, indent=2)
    assert outcome.passed
    degraded = [
        s for s in outcome.result["samples"] if s["stream"] == "breakglass" and s["degraded"]
    ]
    assert degraded, "no break-glass credential was issued while PostgreSQL was down"
    restarted = {r["plane"] for r in outcome.result["restarts"]}
    assert restarted == {plane.value for plane in Plane}
    assert (tmp_path / "report" / "report.md").read_text().startswith("# Chaos drill: PASSED")
    saved = json.loads((tmp_path / "report" / "result.json").read_text())
    assert saved["passed"] is True
    svg = ET.parse(tmp_path / "report" / "timeline.svg").getroot()  # noqa: S314 (our own file)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"


async def test_drill_fails_when_breakglass_needs_postgres(tmp_path: Path) -> None:
    hooks = tmp_path / "sabotage"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SABOTAGE)

    outcome = await run_drill(
        ["postgres-stop-start"],
        report_dir=tmp_path / "report",
        pace=Pace.short(),
        plane_env={Plane.BREAKGLASS: {"PYTHONPATH": str(hooks)}},
    )

    assert not outcome.passed
    breakglass = invariant(outcome.result, "breakglass-always-issues")
    assert breakglass["passed"] is False
    failures = [
        s
        for s in outcome.result["samples"]
        if s["stream"] == "breakglass" and not s["ok"] and not s["excused"]
    ]
    assert failures
    assert all(s["scenario"] == "postgres-stop-start" for s in failures)
    assert "**FAIL** " in (tmp_path / "report" / "report.md").read_text()
