"""Resident memory of each plane process of `appliance up`, idle and after load.

Usage: python benchmarks/plane_memory.py [--requests N]

Starts `appliance up` in a throwaway data folder, waits until the planes are
idle, reads VmRSS from /proc for each plane, sends N health requests to each
plane and reads it again, then stops the appliance. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="health requests per plane")
    parser.add_argument("--base-port", type=int, default=18401)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="appliance-bench-", dir="/tmp"))
    root.chmod(0o711)
    data = root / "data"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "up",
            "--data-dir",
            str(data),
            "--base-port",
            str(args.base_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if line.startswith("stop with Ctrl-C"):
                break
        else:
            raise SystemExit("appliance up did not start")
        time.sleep(5)
        state = json.loads((data / "up.json").read_text())
        idle = {plane: rss_mib(entry["pid"]) for plane, entry in state.items()}
        for entry in state.values():
            for _ in range(args.requests):
                with urllib.request.urlopen(f"{entry['url']}/readyz") as response:
                    response.read()
        loaded = {plane: rss_mib(entry["pid"]) for plane, entry in state.items()}
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, {platform.platform()}"
    )
    print(f"| plane | RSS idle (MiB) | RSS after {args.requests} /readyz (MiB) |")
    print("|---|---|---|")
    for plane in state:
        print(f"| {plane} | {idle[plane]:.1f} | {loaded[plane]:.1f} |")


if __name__ == "__main__":
    main()
