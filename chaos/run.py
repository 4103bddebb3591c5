"""Run a drill from start to report: the function behind `appliance chaos run`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.ports import free_port_block
from appliance.settings import Plane
from chaos.local import LocalDriver
from chaos.report import write_report
from chaos.runner import Drill, Pace
from chaos.scenarios import BY_NAME, SCENARIOS


@dataclass
class DrillOutcome:
    passed: bool
    result: dict[str, Any]
    report: dict[str, Path]


def fresh_data_dir() -> Path:
    # Under /tmp with mode 0711, because as root the embedded server runs as another
    # user, which must traverse every parent folder. The socket path must also stay short.
    root = Path(tempfile.mkdtemp(prefix="appliance-chaos-", dir="/tmp"))
    root.chmod(0o711)
    return root


async def run_drill(
    names: Sequence[str],
    *,
    report_dir: Path,
    data_dir: Path | None = None,
    base_port: int | None = None,
    pace: Pace | None = None,
    plane_env: dict[Plane, dict[str, str]] | None = None,
    keep_data: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DrillOutcome:
    """Start a fresh deployment, run `names` (every scenario when empty), write the report.

    `progress` receives one line as set-up ends and as each scenario starts and ends.
    """
    say = progress or (lambda _line: None)
    scenarios = [BY_NAME[name] for name in names] if names else SCENARIOS
    created = data_dir is None
    root = fresh_data_dir() if data_dir is None else data_dir
    driver = LocalDriver(
        root / "data", base_port=base_port or free_port_block(), extra_env=plane_env
    )
    own_cpus = os.sched_getaffinity(0)
    if driver.cpus is not None:
        os.sched_setaffinity(0, driver.cpus[1])
    drill = Drill(driver, pace=pace)
    try:
        try:
            await drill.setup()
            say(f"set up in {drill.recorder.now():.0f}s; data folder {root}")
            for scenario in scenarios:
                say(f"{scenario.name}: {scenario.description}")
                done = await drill.run(scenario)
                state = "; ".join(done.problems[:3]) if done.problems else "no audit problems"
                say(f"  finished after {done.finished - done.started:.0f}s: {state}")
        finally:
            await drill.teardown()
        result = drill.result_json()
    finally:
        os.sched_setaffinity(0, own_cpus)
        if created and not keep_data:
            shutil.rmtree(root, ignore_errors=True)
    result["data_dir"] = str(root) if keep_data or not created else None
    report = write_report(result, report_dir)
    return DrillOutcome(bool(result["passed"]), result, report)
