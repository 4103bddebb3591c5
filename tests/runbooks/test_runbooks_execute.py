"""Each runbook's {run} and hidden blocks, run in order against a fresh `appliance up`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.ports import free_port_block
from tests.e2e.conftest import RunningAppliance, start_appliance, stop_appliance
from tests.runbooks.runbook_parser import parse_runbook, runbook_paths
from tests.runbooks.runner import run_runbook, runbook_env, stop_postgres

EXECUTED = [path for path in runbook_paths() if any(b.kind == "run" for b in parse_runbook(path))]


@pytest.fixture
def appliance_root() -> Iterator[Path]:
    # Under /tmp, not pytest's tmp_path: as root, the embedded server runs as
    # another user, which must be able to traverse every parent folder.
    root = Path(tempfile.mkdtemp(prefix="appliance-runbook-", dir="/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("runbook", EXECUTED, ids=[path.stem for path in EXECUTED])
def test_runbook_runs_green(runbook: Path, appliance_root: Path) -> None:
    data_dir = appliance_root / "data"
    work = appliance_root / "work"
    work.mkdir()
    (appliance_root / "home").mkdir()
    base_port = free_port_block()
    running: list[RunningAppliance] = [start_appliance(data_dir, base_port)]

    def restart() -> None:
        stop_appliance(running[0])
        running[0] = start_appliance(data_dir, base_port)

    try:
        run_runbook(
            parse_runbook(runbook),
            work=work,
            env=runbook_env(data_dir, base_port),
            actions={
                "@stop-postgres": lambda: stop_postgres(data_dir),
                "@restart-appliance": restart,
            },
        )
    finally:
        if running[0].process.poll() is None:
            stop_appliance(running[0])
