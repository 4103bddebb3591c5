"""Run a drill from start to report: the functions behind `appliance chaos run`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.ports import free_port_block
from appliance.settings import Plane, SettingsError, check_database_url
from chaos.database import DrillDatabase, DrillDatabaseError, GivenDatabase
from chaos.drivers import Driver
from chaos.kubernetes import KubectlError, KubernetesDriver
from chaos.local import LocalDriver
from chaos.report import write_report
from chaos.runner import Drill, Pace
from chaos.scenarios import BY_NAME, SCENARIOS, Scenario

Progress = Callable[[str], None]


@dataclass
class DrillOutcome:
    passed: bool
    result: dict[str, Any]
    report: dict[str, Path]


class ScenarioUnsupported(ValueError):
    """A scenario named on the command line needs what the chosen driver lacks."""


def fresh_data_dir() -> Path:
    # Under /tmp with mode 0711, because as root the embedded server runs as another
    # user, which must traverse every parent folder. The socket path must also stay short.
    root = Path(tempfile.mkdtemp(prefix="appliance-chaos-", dir="/tmp"))
    root.chmod(0o711)
    return root


def select_scenarios(
    names: Sequence[str], capabilities: frozenset[str]
) -> tuple[list[Scenario], list[dict[str, str]]]:
    """Return the scenarios to run and those skipped for a missing capability, with why.

    With `names` empty every scenario is a candidate, and those the driver cannot
    run are skipped. A named scenario the driver cannot run raises `ScenarioUnsupported`.
    """
    candidates = [BY_NAME[name] for name in names] if names else SCENARIOS
    runnable: list[Scenario] = []
    skipped: list[dict[str, str]] = []
    for scenario in candidates:
        missing = sorted(scenario.needs - capabilities)
        if not missing:
            runnable.append(scenario)
            continue
        reason = f"needs {', '.join(missing)}, which this driver lacks"
        if names:
            raise ScenarioUnsupported(f"{scenario.name} {reason}; it runs in local drills only")
        skipped.append({"name": scenario.name, "reason": reason})
    return runnable, skipped


async def run_drill(
    names: Sequence[str],
    *,
    report_dir: Path,
    data_dir: Path | None = None,
    database_url: str | None = None,
    base_port: int | None = None,
    pace: Pace | None = None,
    plane_env: dict[Plane, dict[str, str]] | None = None,
    keep_data: bool = False,
    progress: Progress | None = None,
) -> DrillOutcome:
    """Start a fresh local deployment, run `names` (every scenario when empty), write the report.

    Without `database_url` PostgreSQL is embedded in the data folder. With it,
    the drill creates a database and roles of its own on that server and drops
    them afterwards, unless `keep_data`. `progress` receives one line as set-up
    ends and as each scenario starts and ends.
    Raises `chaos.database.DrillDatabaseError` when the given server cannot be used.
    """
    say = progress or (lambda _line: None)
    database: DrillDatabase | None = GivenDatabase(database_url) if database_url else None
    created = data_dir is None
    root = fresh_data_dir() if data_dir is None else data_dir
    driver = LocalDriver(
        root / "data",
        base_port=base_port or free_port_block(),
        database=database,
        keep_database=keep_data,
        extra_env=plane_env,
        progress=say,
    )
    scenarios, skipped = select_scenarios(names, driver.capabilities)
    own_cpus = os.sched_getaffinity(0)
    if driver.cpus is not None:
        os.sched_setaffinity(0, driver.cpus[1])
    finished = False
    try:
        where = f"{driver.database.describe()}; data folder {root}"
        result = await _run(driver, scenarios, pace, say, where)
        finished = True
    finally:
        os.sched_setaffinity(0, own_cpus)
        # A drill that failed after a plane started keeps the logs its error points to.
        logs = driver.data.root / "logs"
        if created and not finished and logs.exists():
            say(f"kept the data folder {root} with the planes' logs, because the drill failed")
        elif created and not keep_data:
            shutil.rmtree(root, ignore_errors=True)
    if keep_data and isinstance(database, GivenDatabase) and not result["cleanup_error"]:
        say(
            f"kept {database.describe()} and its roles {database.role_prefix}_<plane>; "
            "drop them when done"
        )
    result["driver"] = "local"
    result["data_dir"] = str(root) if keep_data or not created else None
    result["database"] = driver.database.describe()
    result["skipped"] = skipped
    report = write_report(result, report_dir)
    return DrillOutcome(bool(result["passed"]), result, report)


async def run_kubernetes_drill(
    names: Sequence[str],
    *,
    report_dir: Path,
    urls: Mapping[Plane, str],
    database_url: str,
    context: str | None = None,
    kubectl: str = "kubectl",
    replicas: int = 2,
    pace: Pace | None = None,
    progress: Progress | None = None,
) -> DrillOutcome:
    """Run `names` (every scenario the driver supports when empty) on a staging cluster.

    Raises `ScenarioUnsupported` for a named scenario the driver cannot run, and
    `chaos.kubernetes.NotAvailable`, `KubectlError` or `DrillDatabaseError` when
    the cluster, a plane or the database cannot be reached at set-up.
    """
    say = progress or (lambda _line: None)
    try:
        check_database_url("--database-url", database_url)
    except SettingsError as error:
        raise DrillDatabaseError(str(error)) from None
    driver = KubernetesDriver(
        urls=urls, database_url=database_url, kubectl=kubectl, context=context, replicas=replicas
    )
    scenarios, skipped = select_scenarios(names, driver.capabilities)
    for item in skipped:
        say(f"skipping {item['name']}: {item['reason']}")
    result = await _run(driver, scenarios, pace, say, f"cluster via {kubectl}")
    result["driver"] = "kubernetes"
    result["data_dir"] = None
    result["database"] = "the deployment's database, through --database-url"
    result["skipped"] = skipped
    report = write_report(result, report_dir)
    return DrillOutcome(bool(result["passed"]), result, report)


async def _run(
    driver: Driver, scenarios: Sequence[Scenario], pace: Pace | None, say: Progress, where: str
) -> dict[str, Any]:
    """Set up, run each scenario, tear down; return the result without the report fields."""
    drill = Drill(driver, pace=pace)
    try:
        await drill.setup()
        say(f"set up in {drill.recorder.now():.0f}s; org {drill.org_name}; {where}")
        for scenario in scenarios:
            say(f"{scenario.name}: {scenario.description}")
            done = await drill.run(scenario)
            state = "; ".join(done.problems[:3]) if done.problems else "no audit problems"
            say(f"  finished after {done.finished - done.started:.0f}s: {state}")
    finally:
        cleanup_error = await _teardown(drill)
        if cleanup_error:
            say(f"warning: {cleanup_error}")
    result = drill.result_json()
    result["org"] = drill.org_name
    result["cleanup_error"] = cleanup_error
    return result


async def _teardown(drill: Drill) -> str | None:
    """Stop the workload and restore the deployment; return why cleaning up failed, if it did.

    A cleanup failure is reported, not raised, so the drill's result is still written.
    """
    try:
        await drill.teardown()
    except (DrillDatabaseError, KubectlError) as error:
        return str(error)
    return None
