"""Run a runbook's blocks in order, in bash, against a running `appliance up`.

The blocks run as one script per segment (`set -euo pipefail`), each block's
output going to its own file so that the promised output can be checked per
block. A hidden block's `@stop-postgres` or `@restart-appliance` line ends a
segment: the test performs that action, and the next segment starts from the
shell variables the previous one left (they are exported with `set -a` and
saved with `export -p`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.runbooks.runbook_parser import REPO_ROOT, Block, expectation_pattern

SEGMENT_TIMEOUT_SECONDS = 150
DIRECTIVES = ("@stop-postgres", "@restart-appliance")


@dataclass
class Segment:
    blocks: list[Block]
    action: str | None  # directive performed after the blocks


def split_segments(blocks: list[Block]) -> list[Segment]:
    """Group the executable blocks between harness actions."""
    segments: list[Segment] = []
    current: list[Block] = []
    for block in blocks:
        if block.kind not in ("run", "test"):
            continue
        if block.kind == "test":
            directives = [x.strip() for x in block.text.splitlines() if x.strip().startswith("@")]
            for directive in directives:
                if directive not in DIRECTIVES:
                    raise AssertionError(f"{block.where}: unknown test directive {directive}")
            if directives:
                shell = "\n".join(
                    x for x in block.text.splitlines() if not x.strip().startswith("@")
                )
                if shell.strip():
                    current.append(Block(block.path, block.line, "test", shell))
                for directive in directives:
                    segments.append(Segment(current, directive))
                    current = []
                continue
        current.append(block)
    segments.append(Segment(current, None))
    return segments


def segment_script(segment: Segment, number: int, work: Path, state: Path) -> str:
    lines = [
        "set -euo pipefail",
        "set -a",
        f'if [ -f "{state}" ]; then source "{state}"; fi',
        f'cd "{work}"',
    ]
    for index, block in enumerate(segment.blocks):
        log = work / f".out-{number}-{index}.log"
        lines.append(f'echo "{block.where}" > "{work}/.current-block"')
        if block.expected_exits == (0,):
            lines += ["{", block.text, f'}} > "{log}" 2>&1 < /dev/null']
        else:
            lines += [
                "set +e",
                "{",
                block.text,
                f'}} > "{log}" 2>&1 < /dev/null',
                "rc=$?",
                "set -e",
                f'case "$rc" in {"|".join(map(str, block.expected_exits))}) ;; *)',
                f'  echo "exit code $rc, expected {block.expected_exits}" >> "{log}"; exit 97;;',
                "esac",
            ]
    lines.append(f'export -p > "{state}"')
    return "\n".join(lines) + "\n"


def block_log(work: Path, number: int, index: int) -> str:
    path = work / f".out-{number}-{index}.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def run_runbook(
    blocks: list[Block],
    *,
    work: Path,
    env: dict[str, str],
    actions: dict[str, Callable[[], None]],
) -> None:
    """Run every segment; raise AssertionError naming the block that failed."""
    state = work / ".runbook-state.sh"
    for number, segment in enumerate(split_segments(blocks)):
        script = segment_script(segment, number, work, state)
        result = subprocess.run(
            ["bash", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=SEGMENT_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            current = (work / ".current-block").read_text().strip()
            failed = [i for i, b in enumerate(segment.blocks) if b.where == current]
            output = block_log(work, number, failed[0]) if failed else ""
            raise AssertionError(
                f"runbook block {current} failed (bash exit {result.returncode}):\n"
                f"{output}\n{result.stderr}"
            )
        for index, block in enumerate(segment.blocks):
            output = block_log(work, number, index)
            for expected in block.expectations:
                if expectation_pattern(expected).search(output) is None:
                    raise AssertionError(
                        f"{block.where}: output lacks {expected!r}; it was:\n{output}"
                    )
        if segment.action is not None:
            actions[segment.action]()


def stop_postgres(data_dir: Path, timeout: float = 30.0) -> None:
    """Fast shutdown of the embedded PostgreSQL: SIGINT to the postmaster."""
    pid_file = data_dir / "postgres" / "postmaster.pid"
    pid = int(pid_file.read_text().splitlines()[0])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"PostgreSQL (pid {pid}) did not stop within {timeout:.0f}s")


def runbook_env(data_dir: Path, base_port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE_")}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
            "DATA_DIR": str(data_dir),
            "AUTH_URL": f"http://127.0.0.1:{base_port}",
            "ADMIN_URL": f"http://127.0.0.1:{base_port + 1}",
            "PIM_URL": f"http://127.0.0.1:{base_port + 2}",
            "BREAKGLASS_URL": f"http://127.0.0.1:{base_port + 3}",
            "ORG": "demo",
            "APPLIANCE_SRC": str(REPO_ROOT),
            "HOME": str(data_dir.parent / "home"),
        }
    )
    return env
