"""A real `appliance up` in a subprocess, shared by the end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.ports import free_port_block

START_TIMEOUT_SECONDS = 90


@dataclass
class RunningAppliance:
    data_dir: Path
    base_port: int
    process: subprocess.Popen[str]
    output: list[str]

    def url(self, offset: int) -> str:
        return f"http://127.0.0.1:{self.base_port + offset}"

    @property
    def breakglass_url(self) -> str:
        return self.url(3)

    def demo(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.data_dir / "demo-credentials.json").read_text())
        return loaded

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"appliance {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result


def start_appliance(data_dir: Path, base_port: int) -> RunningAppliance:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "up",
            "--data-dir",
            str(data_dir),
            "--base-port",
            str(base_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("stop with Ctrl-C"):
            return RunningAppliance(data_dir, base_port, process, output)
    process.kill()
    raise AssertionError("appliance up did not start:\n" + "".join(output))


def stop_appliance(appliance: RunningAppliance) -> int:
    appliance.process.send_signal(signal.SIGTERM)
    try:
        rest, _ = appliance.process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(appliance.process.pid, signal.SIGKILL)
        rest, _ = appliance.process.communicate()
    appliance.output.append(rest)
    return appliance.process.returncode


@pytest.fixture(scope="session")
def appliance_root() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root, the embedded server runs as another
    # user, which must be able to traverse every parent folder.
    root = Path(tempfile.mkdtemp(prefix="appliance-e2e-", dir="/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def appliance(appliance_root: Path) -> Iterator[RunningAppliance]:
    running = start_appliance(appliance_root / "data", free_port_block())
    try:
        yield running
    finally:
        if running.process.poll() is None:
            stop_appliance(running)
