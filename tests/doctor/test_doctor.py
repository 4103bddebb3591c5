"""`appliance doctor` against a real `appliance up`: green, a frozen plane, a stopped PostgreSQL.

The tests share one `appliance up` and run in file order; the last one stops
its PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner

from appliance.cli.main import cli
from appliance.doctor.findings import Finding, render_text
from appliance.doctor.planes import MAX_CLOCK_SKEW_SECONDS, _skew_finding
from appliance.ports import free_port_block
from tests.e2e.conftest import RunningAppliance, start_appliance, stop_appliance
from tests.runbooks.runner import stop_postgres


@pytest.fixture(scope="module")
def running() -> Iterator[RunningAppliance]:
    # Under /tmp: as root, the embedded server runs as another user, which must
    # be able to traverse every parent folder.
    root = Path(tempfile.mkdtemp(prefix="appliance-doctor-", dir="/tmp"))
    root.chmod(0o711)
    appliance = start_appliance(root / "data", free_port_block())
    try:
        yield appliance
    finally:
        if appliance.process.poll() is None:
            stop_appliance(appliance)
        shutil.rmtree(root, ignore_errors=True)


def doctor(appliance: RunningAppliance, *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["doctor", "--base-port", str(appliance.base_port)]
    args += ["--data-dir", str(appliance.data_dir), "--json", *extra]
    result = CliRunner().invoke(cli, args, env={"APPLIANCE_ADMIN_DATABASE_URL": None})
    return result.exit_code, json.loads(result.output)


def by_check(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["check"]: finding for finding in report["findings"]}


def test_doctor_green_on_fresh_appliance(running: RunningAppliance) -> None:
    code, report = doctor(running)
    findings = by_check(report)

    assert code == 0, report
    assert report["ok"] is True
    for plane in ("auth", "admin", "pim", "breakglass"):
        assert findings[f"{plane}: health"]["status"] == "ok"
        assert findings[f"{plane}: readiness"]["status"] == "ok"
        assert findings[f"{plane}: clock"]["status"] == "ok"
    assert findings["breakglass: snapshot"]["status"] == "ok"
    assert findings["breakglass: journal"]["status"] == "ok"
    assert findings["database"]["status"] == "ok"
    assert findings["database: clock"]["status"] == "ok"
    assert findings["keys: demo/breakglass"]["status"] == "ok"


def test_doctor_text_output_green(running: RunningAppliance) -> None:
    result = CliRunner().invoke(
        cli, ["doctor", "--base-port", str(running.base_port), "--data-dir", str(running.data_dir)]
    )

    assert result.exit_code == 0
    assert result.output.strip().endswith("all checks passed")


def test_doctor_reports_unreachable_plane(running: RunningAppliance) -> None:
    unused = free_port_block(1)

    code, report = doctor(running, "--admin-url", f"http://127.0.0.1:{unused}")
    finding = by_check(report)["admin: health"]

    assert code == 1
    assert finding["status"] == "fail"
    assert finding["runbook"] == "runbooks/kubernetes-rollback.md"
    assert by_check(report)["auth: health"]["status"] == "ok"


def test_doctor_reports_frozen_plane(running: RunningAppliance) -> None:
    # SIGSTOP keeps the process alive (so `appliance up` does not restart it)
    # but it answers nothing: what a hung plane looks like from outside.
    pids = json.loads((running.data_dir / "up.json").read_text())
    pid = pids["pim"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        code, report = doctor(running)
    finally:
        os.kill(pid, signal.SIGCONT)
    finding = by_check(report)["pim: health"]

    assert code == 1
    assert finding["status"] == "fail"
    assert "unreachable" in finding["message"]
    assert finding["runbook"] == "runbooks/kubernetes-rollback.md"


def test_doctor_warns_about_old_key(running: RunningAppliance) -> None:
    from appliance.db.embedded import EmbeddedPostgres

    async def age_keys(shift: timedelta) -> None:
        dsn = EmbeddedPostgres(running.data_dir).superuser_dsn("appliance")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "UPDATE signing_keys SET activated_at = activated_at - $1::interval "
                "WHERE plane = 'breakglass' AND status = 'active'",
                shift,
            )
        finally:
            await conn.close()

    asyncio.run(age_keys(timedelta(days=60)))
    try:
        code, report = doctor(running)
    finally:
        asyncio.run(age_keys(timedelta(days=-60)))
    finding = by_check(report)["keys: demo/breakglass"]

    assert code == 1
    assert finding["status"] == "warn"
    assert "60 days old" in finding["message"]
    assert finding["runbook"] == "runbooks/signing-key-compromise.md"


def test_doctor_reports_stopped_postgres(running: RunningAppliance) -> None:
    stop_postgres(running.data_dir)

    code, report = doctor(running)
    findings = by_check(report)

    assert code == 1
    assert findings["database"]["status"] == "fail"
    assert findings["database"]["runbook"] == "runbooks/database-outage.md"
    assert findings["auth: readiness"]["status"] == "fail"
    assert findings["auth: readiness"]["runbook"] == "runbooks/database-outage.md"
    assert findings["breakglass: health"]["status"] == "ok"


def test_skew_beyond_limit_warns() -> None:
    finding = _skew_finding("auth: clock", MAX_CLOCK_SKEW_SECONDS + 5, "the plane's Date header")

    assert finding.status == "warn"
    assert "+10s" in finding.message


def test_skew_within_limit_ok() -> None:
    assert _skew_finding("auth: clock", -1.0, "x").status == "ok"


def test_text_output_names_runbooks() -> None:
    text = render_text(
        [
            Finding("database", "fail", "cannot connect", "runbooks/database-outage.md"),
            Finding("auth: health", "ok", "fine"),
        ]
    )

    assert "-> open runbooks/database-outage.md" in text
    assert text.endswith("1 problem(s) found; runbooks to open: runbooks/database-outage.md")
