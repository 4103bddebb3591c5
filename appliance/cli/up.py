"""`appliance up`: embedded PostgreSQL plus the four planes as separate processes."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

import asyncpg
import click

from appliance.cli.local_db import EMBEDDED_DATABASE, embedded_plane_dsn
from appliance.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from appliance.db.migrate import DEFAULT_ROLE_PREFIX, MigrationError, migrate
from appliance.demo import dump_demo_credentials, seed_demo
from appliance.local import DataDir, default_data_dir, write_private
from appliance.log import configure_logging, log_fields
from appliance.settings import Plane

log = logging.getLogger("appliance.up")

PLANE_ORDER = [Plane.AUTH, Plane.ADMIN, Plane.PIM, Plane.BREAKGLASS]
DEFAULT_BASE_PORT = 8401
START_TIMEOUT_SECONDS = 30.0
# A plane that crashes is restarted, but one that crashes this often within a
# minute is left down and reported, so a broken build does not spin forever.
MAX_RESTARTS_PER_MINUTE = 5


def plane_env(data: DataDir, plane: Plane, port: int, database_url: str) -> dict[str, str]:
    """Environment of one plane: only its own DSN and master secret.

    The caller's PostgreSQL password variables stay out too: the plane's DSN
    carries its own role's password, and the caller's may belong to a superuser.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("APPLIANCE_") and key not in ("PGPASSWORD", "PGPASSFILE")
    }
    prefix = f"APPLIANCE_{plane.name}"
    env.update(
        {
            f"{prefix}_DATABASE_URL": database_url,
            f"{prefix}_MASTER_SECRET_FILE": str(data.master_secret_file(plane)),
            "APPLIANCE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "APPLIANCE_DATA_DIR": str(data.plane_dir(plane)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class PlaneProcess:
    """One plane's `appliance serve` child, restarted if it dies."""

    def __init__(self, plane: Plane, port: int, env: dict[str, str], log_path: Path) -> None:
        self.plane = plane
        self.port = port
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts: list[float] = []
        self._log_file: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        data_dir = Path(self.env["APPLIANCE_DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (kept open while the child runs)
        self.process = subprocess.Popen(  # noqa: S603 (fixed argv)
            [
                sys.executable,
                "-m",
                "appliance",
                "serve",
                "--plane",
                self.plane.value,
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except (OSError, http.client.HTTPException):
            # HTTPException: the reply on the port was not HTTP (not our plane).
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(
                self.log_path.read_text("utf-8", errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return "(no log)"


def wait_healthy(planes: list[PlaneProcess]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    pending = list(planes)
    while pending:
        for plane in list(pending):
            assert plane.process is not None
            if plane.process.poll() is not None:
                raise click.ClickException(
                    f"plane {plane.plane.value} exited with code "
                    f"{plane.process.returncode} at start; "
                    f"its log ({plane.log_path}) ends with:\n{plane.log_tail()}"
                )
            if plane.healthy():
                pending.remove(plane)
        if time.monotonic() > deadline:
            names = ", ".join(p.plane.value for p in pending)
            raise click.ClickException(
                f"planes not healthy after {START_TIMEOUT_SECONDS:.0f}s: {names}"
            )
        time.sleep(0.1)


async def prepare_database(
    data: DataDir,
    admin_dsn: str,
    breakglass_url: str,
    *,
    role_prefix: str = DEFAULT_ROLE_PREFIX,
) -> bool:
    """Migrate and seed; return True when the demo org was created by this call.

    `admin_dsn` must bypass row-level security (a superuser, or a role with BYPASSRLS).
    """
    await migrate(admin_dsn, role_password_dir=data.role_password_dir, role_prefix=role_prefix)
    conn = await asyncpg.connect(admin_dsn)
    try:
        seeded = await seed_demo(
            conn,
            breakglass_master_secret=data.master_secret(Plane.BREAKGLASS),
            public_url=breakglass_url,
            plane_master_secrets={plane.value: data.master_secret(plane) for plane in Plane},
        )
    finally:
        await conn.close()
    if seeded is not None:
        write_private(data.demo_credentials, dump_demo_credentials(seeded))
        return True
    return False


def print_summary(planes: list[PlaneProcess], data: DataDir, seeded: bool) -> None:
    click.echo("appliance is up:")
    for plane in planes:
        click.echo(f"  {plane.plane.value:<11} {plane.url:<24} log: {plane.log_path}")
    click.echo(f"  postgres    embedded, socket in {data.root / 'run'}")
    state = "created" if seeded else "kept from an earlier run"
    click.echo(f"demo org 'demo' {state}; its secrets are in {data.demo_credentials}")
    click.echo("stop with Ctrl-C")


def supervise(planes: list[PlaneProcess], pg: EmbeddedPostgres, stop_requested: list[int]) -> None:
    postgres_reported = False
    while not stop_requested:
        if not postgres_reported and not pg.is_running():
            # Not restarted on purpose: drills stop PostgreSQL to test the planes.
            click.echo(
                "postgres has stopped: break-glass serves from its snapshot, the other planes "
                "answer 503; restart `appliance up` to bring it back",
                err=True,
            )
            postgres_reported = True
        for plane in planes:
            assert plane.process is not None
            code = plane.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            plane.restarts = [t for t in plane.restarts if now - t < 60] + [now]
            if len(plane.restarts) > MAX_RESTARTS_PER_MINUTE:
                continue
            log.warning(
                "plane exited; restarting",
                extra=log_fields(plane=plane.plane.value, exit_code=code),
            )
            plane.stop()
            plane.start()
        time.sleep(0.2)


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the embedded PostgreSQL, secrets and logs "
    "(default: /var/lib/appliance as root, else the user data dir).",
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65530),
    default=DEFAULT_BASE_PORT,
    show_default=True,
    help="Port of the auth plane; admin, pim and breakglass use the next three.",
)
def up(data_dir: Path | None, base_port: int) -> None:
    """Start an embedded PostgreSQL and the four planes, seeded with org `demo`."""
    configure_logging("warning")
    data = DataDir((data_dir or default_data_dir()).resolve())
    # 0700: the embedded server's own user gets group access where it needs it.
    data.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    data.ensure_secrets()
    pg = EmbeddedPostgres(data.root)
    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stop_requested.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    planes: list[PlaneProcess] = []
    try:
        try:
            pg.ensure_initialized()
            pg.start()
        except EmbeddedPostgresError as error:
            raise click.ClickException(str(error)) from None
        ports = {plane: base_port + index for index, plane in enumerate(PLANE_ORDER)}
        breakglass_url = f"http://127.0.0.1:{ports[Plane.BREAKGLASS]}"
        try:
            seeded = asyncio.run(
                prepare_database(data, pg.superuser_dsn(EMBEDDED_DATABASE), breakglass_url)
            )
        except MigrationError as error:
            raise click.ClickException(str(error)) from None
        for plane_name in PLANE_ORDER:
            process = PlaneProcess(
                plane_name,
                ports[plane_name],
                plane_env(
                    data, plane_name, ports[plane_name], embedded_plane_dsn(data, pg, plane_name)
                ),
                data.log_file(plane_name),
            )
            process.start()
            planes.append(process)
        wait_healthy(planes)
        print_summary(planes, data, seeded)
        state = {
            p.plane.value: {"url": p.url, "pid": p.process.pid if p.process else None}
            for p in planes
        }
        write_private(data.root / "up.json", json.dumps(state, indent=2).encode())
        supervise(planes, pg, stop_requested)
        click.echo("stopping ...")
    finally:
        for running in planes:
            running.stop()
        pg.stop()
    click.echo("stopped")
