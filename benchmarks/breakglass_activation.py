"""Break-glass activation latency with PostgreSQL up and down.

Usage: python benchmarks/breakglass_activation.py [--activations N] [--cpu CORE]

Starts an embedded PostgreSQL in a throwaway folder, creates 2N accounts,
starts the break-glass plane as its own process (pinned to one core with
taskset when available), and times N sequential activations, each on a fresh
account so that every TOTP code is used once. Then it stops PostgreSQL, waits
for the plane to serve from its snapshot, and times N more. Latency is the
client's round trip over HTTP on 127.0.0.1, passphrase hashing included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
from jwcrypto import jwk

from appliance.db.embedded import EmbeddedPostgres
from appliance.db.migrate import migrate
from appliance.db.queries.orgs import ORG_INSERT
from appliance.demo import create_breakglass_account
from appliance.identity.totp import STEP_SECONDS, code_at, new_secret
from appliance.keys.sealing import sealing_private_key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def seed(dsn: str, master: bytes, count: int) -> list[tuple[str, str, str]]:
    conn = await asyncpg.connect(dsn)
    accounts = []
    try:
        async with conn.transaction():
            org = await conn.fetchrow(ORG_INSERT, "bench", "bench")
            seal_public = bytes(sealing_private_key(master, "breakglass").public_key)
            for n in range(count):
                name, passphrase, secret = f"oncall-{n}", secrets.token_urlsafe(16), new_secret()
                await create_breakglass_account(
                    conn,
                    org["id"],
                    name=name,
                    role="breakglass-admin",
                    passphrase=passphrase,
                    totp_secret=secret,
                    seal_public_key=seal_public,
                    actor="benchmark",
                )
                accounts.append((name, passphrase, secret))
    finally:
        await conn.close()
    return accounts


def activate(url: str, account: tuple[str, str, str], holder: dict[str, Any]) -> float:
    name, passphrase, secret = account
    body = json.dumps(
        {
            "account": name,
            "passphrase": passphrase,
            "totp": code_at(secret, int(time.time() // STEP_SECONDS)),
            "incident": "BENCH-1",
            "reason": "benchmark",
            "holder_jwk": holder,
        }
    ).encode()
    request = urllib.request.Request(
        f"{url}/o/bench/breakglass/activate",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        if response.status != 201:
            raise RuntimeError(f"activation returned HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def readiness(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            return dict(json.loads(response.read())["planes"]["breakglass"])
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read())["planes"]["breakglass"])


def wait_for(url: str, predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate(readiness(url)):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("plane did not reach the expected state")


def summarize(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    return f"| {label} | {len(samples)} | {median:.1f} | {p99:.1f} | {ordered[-1]:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", type=int, default=100, help="activations per mode")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin the plane to")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="appliance-bench-", dir="/tmp"))
    root.chmod(0o711)
    pg = EmbeddedPostgres(root / "pg")
    plane: subprocess.Popen[bytes] | None = None
    try:
        pg.ensure_initialized()
        pg.start()
        password = secrets.token_urlsafe(18)
        (root / "passwords").mkdir()
        (root / "passwords" / "breakglass").write_text(password)
        dsn = pg.superuser_dsn("appliance")
        asyncio.run(migrate(dsn, role_password_dir=root / "passwords"))
        master = secrets.token_urlsafe(32).encode()
        (root / "master").write_bytes(master)
        accounts = asyncio.run(seed(dsn, master, 2 * args.activations))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        env.update(
            {
                "APPLIANCE_BREAKGLASS_DATABASE_URL": pg.dsn_for(
                    "appliance_breakglass", password, "appliance"
                ),
                "APPLIANCE_BREAKGLASS_MASTER_SECRET_FILE": str(root / "master"),
                "APPLIANCE_DATA_DIR": str(root / "plane"),
                "APPLIANCE_PUBLIC_URL": url,
                "APPLIANCE_LOG_LEVEL": "warning",
            }
        )
        command = [
            sys.executable,
            "-m",
            "appliance",
            "serve",
            "--plane",
            "breakglass",
            "--port",
            str(port),
        ]
        if shutil.which("taskset"):
            command = ["taskset", "-c", str(args.cpu), *command]
        plane = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(url, lambda bg: bg.get("snapshot_taken_at"))
        holder = jwk.JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)
        activate(url, accounts[0], holder)  # warm-up: first key load, first connections
        up = [activate(url, account, holder) for account in accounts[1 : args.activations]]
        pg.stop()
        wait_for(url, lambda bg: bg.get("database") == "unreachable")
        down = [activate(url, account, holder) for account in accounts[args.activations :]]
    finally:
        if plane is not None:
            plane.send_signal(signal.SIGTERM)
            plane.wait(30)
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, "
        f"plane pinned to core {args.cpu}"
    )
    print("| mode | activations | p50 (ms) | p99 (ms) | max (ms) |")
    print("|---|---|---|---|---|")
    print(summarize("PostgreSQL up", up))
    print(summarize("PostgreSQL down (snapshot + journal)", down))


if __name__ == "__main__":
    main()
