"""A break-glass plane process and its own PostgreSQL cluster, for outage tests.

These tests stop PostgreSQL for real, so they use a cluster of their own and
leave the session's shared cluster alone.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.ports import free_port_block

READY_TIMEOUT_SECONDS = 30


@dataclass
class PlaneProcess:
    """`appliance serve --plane breakglass` in a subprocess."""

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "serve",
                "--plane",
                "breakglass",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"plane exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.get("/healthz")
                return
            except (OSError, AssertionError, http.client.HTTPException):
                time.sleep(0.1)
        raise AssertionError("plane did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        self._close_log()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw = error.read()
            status = error.code
            error.close()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body

    def readiness(self) -> tuple[int, dict[str, Any]]:
        status, body = self.request("GET", "/readyz")
        return status, body

    def wait_for(
        self, predicate: Any, what: str, timeout: float = READY_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            status, body = self.readiness()
            last = (status, body)
            if isinstance(body, dict) and predicate(
                status, body.get("planes", {}).get("breakglass", {})
            ):
                return body
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last readiness: {last}")


def plane_env(dsn: str, secret_file: Path, data_dir: Path, public_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE_")}
    env.update(
        {
            "APPLIANCE_BREAKGLASS_DATABASE_URL": dsn,
            "APPLIANCE_BREAKGLASS_MASTER_SECRET_FILE": str(secret_file),
            "APPLIANCE_DATA_DIR": str(data_dir),
            "APPLIANCE_PUBLIC_URL": public_url,
        }
    )
    return env


def new_plane(dsn: str, master_secret: bytes, folder: Path) -> PlaneProcess:
    folder.mkdir(parents=True, exist_ok=True)
    secret_file = folder / "master-secret"
    secret_file.write_bytes(master_secret)
    port = free_port_block(1)
    env = plane_env(dsn, secret_file, folder / "data", f"http://127.0.0.1:{port}")
    return PlaneProcess(env, port, folder / f"plane-{secrets.token_hex(2)}.log")
