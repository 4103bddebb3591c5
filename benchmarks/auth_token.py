"""Throughput and latency of the auth plane's token endpoint, measured with wrk.

Usage: python benchmarks/auth_token.py [--duration S] [--connections N] [--base-port PORT]

Starts `appliance up` in a throwaway data folder and pins the auth plane
process to one core and wrk to another with taskset. It measures three
endpoints of that process, one after the other: the client_credentials grant
of the demo confidential client (client_secret_basic) at POST /o/demo/token,
then GET /o/demo/jwks.json and GET /healthz for comparison. Each endpoint first
gets a warm-up run whose figures are discarded. Then it stops `appliance up`
with SIGTERM and prints a Markdown table. Exits with status 1 when a measured
run saw a response other than 200 or a socket error, or when the auth plane
process exited during the runs. When the start, a wrk run or the stop fails,
the data folder is kept for inspection.

Needs `wrk` (Debian package `wrk`) and `taskset`, and at least two cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "status_counts.lua"
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 60.0
RESULT_PREFIX = "WRK_RESULT "


@dataclass(frozen=True)
class Endpoint:
    label: str
    path: str
    env: dict[str, str]


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    server_cpu_percent: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_s

    @property
    def non_200(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=int, default=15, help="seconds of each measured wrk run per endpoint"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of the discarded wrk run before each measured one",
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrent wrk connections")
    parser.add_argument(
        "--base-port",
        type=int,
        default=28401,
        help="port of the auth plane, passed to `appliance up`, which also uses the next three",
    )
    parser.add_argument(
        "--server-cpu",
        type=int,
        default=0,
        help="CPU number that the auth plane process is pinned to",
    )
    parser.add_argument(
        "--client-cpu", type=int, default=1, help="CPU number that wrk is pinned to"
    )
    return parser.parse_args()


def check_tools(args: argparse.Namespace) -> None:
    for tool, package in (("wrk", "wrk"), ("taskset", "util-linux")):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} not found on PATH: install it with `apt-get install {package}`"
            )
    usable = os.sched_getaffinity(0)
    for option, core in (("--server-cpu", args.server_cpu), ("--client-cpu", args.client_cpu)):
        if core not in usable:
            raise SystemExit(
                f"{option} {core}: no such CPU available here; choose one of {sorted(usable)}"
            )
    if args.server_cpu == args.client_cpu:
        raise SystemExit("--server-cpu and --client-cpu must differ")


def start_appliance(data: Path, base_port: int, output: Path) -> subprocess.Popen[bytes]:
    with output.open("wb") as output_file:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "up",
                "--data-dir",
                str(data),
                "--base-port",
                str(base_port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=output_file,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(up: subprocess.Popen[bytes], data: Path, output: Path) -> dict[str, Any]:
    """Wait for up.json, which `appliance up` writes once every plane is healthy, and
    return its content."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not (data / "up.json").exists():
        if up.poll() is not None:
            raise RuntimeError(
                f"appliance up exited with code {up.returncode} at start; "
                f"its output:\n{output.read_text(errors='replace')}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"appliance up wrote no up.json within {START_TIMEOUT_SECONDS:.0f}s")
        time.sleep(0.2)
    state: dict[str, Any] = json.loads((data / "up.json").read_text())
    return state


def stop_appliance(up: subprocess.Popen[bytes], plane_pids: list[int]) -> None:
    """Send SIGTERM to `appliance up` and check that it and its planes exited."""
    if up.poll() is None:
        up.send_signal(signal.SIGTERM)
    try:
        up.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"appliance up (pid {up.pid}) did not exit within {STOP_TIMEOUT_SECONDS:.0f} s "
            f"of SIGTERM; stop it and its planes {plane_pids} by PID"
        ) from None
    alive = [pid for pid in plane_pids if Path(f"/proc/{pid}").exists()]
    if alive:
        raise RuntimeError(
            f"plane processes {alive} still run after appliance up exited; stop them by PID"
        )


def basic_authorization(client_id: str, client_secret: str) -> str:
    # RFC 6749 section 2.3.1: both halves are form-encoded before base64.
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def start_time_ticks(pid: int) -> int:
    """Return the process start time from /proc, which changes if a PID is reused."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in brackets and may contain spaces.
    return int(stat.rpartition(")")[2].split()[19])


def cpu_ticks(pid: int) -> int:
    """Return user plus system CPU time of all the process's threads, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def pin_process(pid: int, core: int) -> None:
    """Pin every thread of `pid` to `core`, then check each thread's affinity."""
    # Plain `taskset -cp` sets only the main thread's affinity and threads that
    # already exist keep theirs, so -a sets every thread.
    subprocess.run(
        ["taskset", "-a", "-cp", str(core), str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:") and line.split()[1] != str(core):
                raise RuntimeError(f"thread {task.name} of pid {pid} is not pinned: {line}")


def run_wrk(
    url: str, endpoint: Endpoint, args: argparse.Namespace, seconds: int, server_pid: int
) -> WrkResult:
    """Run wrk against one endpoint and read the auth plane's CPU time around the run."""
    command = [
        "taskset",
        "-c",
        str(args.client_cpu),
        "wrk",
        "-t1",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(WRK_SCRIPT),
        url + endpoint.path,
    ]

    ticks_before = cpu_ticks(server_pid)
    started = time.monotonic()
    completed = subprocess.run(
        command,
        env={**os.environ, **endpoint.env},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    elapsed = time.monotonic() - started
    ticks = cpu_ticks(server_pid) - ticks_before

    if completed.returncode != 0:
        raise RuntimeError(
            f"wrk failed with code {completed.returncode} on {endpoint.path}:\n{completed.stderr}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if len(lines) != 1:
        raise RuntimeError(
            f"expected one {RESULT_PREFIX.strip()} line from wrk, got {len(lines)}:\n"
            f"{completed.stdout}"
        )

    raw: dict[str, Any] = json.loads(lines[0].removeprefix(RESULT_PREFIX))
    errors = {name: int(count) for name, count in raw["errors"].items() if name != "status"}
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        statuses={int(status): count for status, count in raw["statuses"].items()},
        socket_errors={name: count for name, count in errors.items() if count},
        server_cpu_percent=100 * ticks / os.sysconf("SC_CLK_TCK") / elapsed,
    )


def endpoints(credentials_file: Path) -> list[Endpoint]:
    client = json.loads(credentials_file.read_text())["oidc"]["confidential_client"]
    token_env = {
        "WRK_METHOD": "POST",
        "WRK_BODY": "grant_type=client_credentials",
        "WRK_CONTENT_TYPE": "application/x-www-form-urlencoded",
        "WRK_AUTHORIZATION": basic_authorization(client["client_id"], client["client_secret"]),
    }
    return [
        Endpoint("POST /o/demo/token (client_credentials)", "/o/demo/token", token_env),
        Endpoint("GET /o/demo/jwks.json", "/o/demo/jwks.json", {"WRK_METHOD": "GET"}),
        Endpoint("GET /healthz", "/healthz", {"WRK_METHOD": "GET"}),
    ]


def log_problems(log_file: Path, limit: int = 5) -> list[str]:
    """Return the count and first messages of warning and error lines in a plane log."""
    problems = []
    for line in log_file.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            problems.append(line[:200])
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            problems.append(f"{entry.get('level')}: {entry.get('logger')}: {entry.get('msg')}")
    if not problems:
        return []
    return [f"{len(problems)} warning or error lines in {log_file}:", *problems[:limit]]


def machine_description() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    wrk_version = subprocess.run(
        ["wrk", "-v"], capture_output=True, text=True, check=False
    ).stdout.split(" [")[0]
    return (
        f"machine: {model}, {os.cpu_count()} cores, {platform.machine()}, "
        f"Linux {platform.release()}, Python {platform.python_version()}, {wrk_version}"
    )


def print_table(results: list[tuple[Endpoint, WrkResult]], args: argparse.Namespace) -> None:
    print(machine_description())
    print(
        f"wrk: 1 thread, {args.connections} connections, {args.duration} s per endpoint "
        f"after {args.warmup} s of warm-up; auth plane on core {args.server_cpu}, "
        f"wrk on core {args.client_cpu}"
    )
    print()
    print(
        "| endpoint | requests | requests/s | p50 (ms) | p99 (ms) | max (ms) "
        "| non-200 | socket errors | auth plane CPU (% of one core) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for endpoint, result in results:
        errors = ", ".join(f"{name} {count}" for name, count in result.socket_errors.items())
        print(
            f"| {endpoint.label} | {result.requests} | {result.requests_per_second:,.0f} "
            f"| {result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.max_ms:.1f} "
            f"| {result.non_200} | {errors or 0} | {result.server_cpu_percent:.0f} |"
        )


def measure(
    data: Path, state: dict[str, Any], args: argparse.Namespace
) -> list[tuple[Endpoint, WrkResult]]:
    """Pin the auth plane to its core and run wrk on each endpoint."""
    url, pid = state["auth"]["url"], int(state["auth"]["pid"])
    started_at = start_time_ticks(pid)
    pin_process(pid, args.server_cpu)
    results = []
    for endpoint in endpoints(data / "demo-credentials.json"):
        if args.warmup > 0:
            warmup = run_wrk(url, endpoint, args, args.warmup, pid)
            if warmup.non_200 or warmup.socket_errors:
                print(
                    f"warm-up of {endpoint.label}: responses by status {warmup.statuses}, "
                    f"socket errors {warmup.socket_errors}",
                    file=sys.stderr,
                )
        results.append((endpoint, run_wrk(url, endpoint, args, args.duration, pid)))
        # The supervisor restarts a crashed plane under a new, unpinned PID.
        if not Path(f"/proc/{pid}").exists() or start_time_ticks(pid) != started_at:
            raise RuntimeError(f"the auth plane (pid {pid}) exited during {endpoint.label}")
    return results


def main() -> None:
    args = parse_args()
    check_tools(args)
    root = Path(tempfile.mkdtemp(prefix="appliance-bench-", dir="/tmp"))
    root.chmod(0o711)
    data = root / "data"
    output = root / "up.log"
    plane_pids: list[int] = []
    failed = True
    up = start_appliance(data, args.base_port, output)
    try:
        state = wait_until_up(up, data, output)
        plane_pids = [int(entry["pid"]) for entry in state.values()]
        results = measure(data, state, args)
        failed = False
    finally:
        try:
            stop_appliance(up, plane_pids)
        except RuntimeError:
            # The embedded PostgreSQL may still use the folder.
            failed = True
            raise
        finally:
            auth_log = data / "logs" / "auth.log"
            for line in log_problems(auth_log) if auth_log.exists() else []:
                print(line, file=sys.stderr)
            if failed:
                print(f"kept the data folder for inspection: {root}", file=sys.stderr)
            else:
                shutil.rmtree(root, ignore_errors=True)

    print_table(results, args)
    failures = [
        (endpoint, result) for endpoint, result in results if result.non_200 or result.socket_errors
    ]
    for endpoint, result in failures:
        print(
            f"{endpoint.label}: responses by status {result.statuses}, "
            f"socket errors {result.socket_errors}",
            file=sys.stderr,
        )
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
