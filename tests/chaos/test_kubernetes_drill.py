"""`appliance chaos run --driver kubernetes`: option checks and a drill through a fake kubectl.

No cluster is available here. The planes run as local processes, and a fake
`kubectl` records each command and prints a NetworkPolicy, so the test
checks what the drill sends to a cluster and that it seeds, runs, restores
and reports. The faults themselves do not happen.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli.main import cli
from appliance.ports import free_port_block
from appliance.settings import Plane
from chaos.database import GivenDatabase
from chaos.local import LocalDriver
from tests.chaos.test_kubernetes import POLICY
from tests.pgcluster import PgCluster

FAKE_KUBECTL = """#!{python}
import json, sys
stdin = sys.stdin.read() if "--filename=-" in sys.argv else None
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
if {fail!r} and "get" in sys.argv:
    print("error: You must be logged in to the server (Unauthorized)", file=sys.stderr)
    sys.exit(1)
if "networkpolicy" in sys.argv:
    print({policy!r})
"""


def fake_kubectl(folder: Path, *, fail: bool = False) -> tuple[Path, Path]:
    """Write a fake kubectl into `folder`; return it and the file it logs commands to."""
    log = folder / "kubectl.log"
    script = folder / "kubectl"
    script.write_text(
        FAKE_KUBECTL.format(
            python=sys.executable, log=str(log), fail=fail, policy=json.dumps(POLICY)
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def plane_url_options(base: str = "https://{plane}.staging.example") -> list[str]:
    return [
        option
        for plane in Plane
        for option in ("--plane-url", f"{plane.value}={base.format(plane=plane.value)}")
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--plane-url", "auth=https://a"], "no URL for admin, pim, breakglass"),
        (["--plane-url", "vault=https://v"], "plane must be one of"),
        (["--plane-url", "auth=ftp://a"], "must start with https://"),
        (["--plane-url", "auth=https://"], "name a host"),
        (["--plane-url", "auth=https://a", "--plane-url", "auth=https://b"], "auth is given twice"),
    ],
)
def test_plane_urls_validated(options: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["chaos", "run", "--driver", "kubernetes", "--database-url", "postgresql:///x", *options],
    )

    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--driver", "kubernetes", *plane_url_options()], "needs --database-url"),
        (
            ["--driver", "kubernetes", "--keep-data", "--database-url", "postgresql:///x"],
            "--keep-data apply to the local driver only",
        ),
        (plane_url_options(), "need --driver kubernetes"),
    ],
)
def test_driver_options_not_mixed(options: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["chaos", "run", *options])

    assert result.exit_code == 2, result.output
    assert message in result.output


def test_scenario_needing_role_access_rejected() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "chaos",
            "run",
            "saturate-auth",
            "--driver",
            "kubernetes",
            "--database-url",
            "postgresql:///x",
            *plane_url_options(),
        ],
    )

    assert result.exit_code == 2, result.output
    assert "saturate-auth needs plane-role-access" in result.output


def test_kubectl_failure_stops_before_drill(tmp_path: Path) -> None:
    kubectl, log = fake_kubectl(tmp_path, fail=True)

    result = CliRunner().invoke(
        cli,
        [
            "chaos",
            "run",
            "kill-one-plane",
            "--driver",
            "kubernetes",
            "--database-url",
            "postgresql:///x",
            "--kubectl",
            str(kubectl),
            "--report-dir",
            str(tmp_path / "report"),
            *plane_url_options(),
        ],
    )

    assert result.exit_code == 1, result.output
    assert "the drill could not start" in result.output
    assert "Unauthorized" in result.output
    assert not (tmp_path / "report").exists()
    assert len(log.read_text().splitlines()) == 1


@pytest.fixture
async def running_planes(pg_cluster: PgCluster, tmp_path: Path) -> AsyncIterator[LocalDriver]:
    """Four local planes on a database of their own: the "staging deployment"."""
    driver = LocalDriver(
        tmp_path / "deployment",
        base_port=free_port_block(),
        database=GivenDatabase(pg_cluster.superuser_dsn),
    )

    async def no_seed() -> None:
        return None

    await driver.setup(no_seed)
    try:
        yield driver
    finally:
        await driver.teardown()


async def test_drill_drives_cluster_through_kubectl(
    running_planes: LocalDriver, tmp_path: Path
) -> None:
    kubectl, log = fake_kubectl(tmp_path)
    urls = [
        option
        for plane in Plane
        for option in ("--plane-url", f"{plane.value}={running_planes.url(plane)}")
    ]
    # A subprocess, because the planes' proxies run on this test's event loop.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "chaos",
        "run",
        "kill-one-plane",
        "postgres-stop-start",
        "--short",
        "--driver",
        "kubernetes",
        "--context",
        "staging",
        "--kubectl",
        str(kubectl),
        "--database-url",
        running_planes.admin_dsn,
        "--report-dir",
        str(tmp_path / "report"),
        *urls,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)

    assert process.returncode == 0, output.decode()
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    argvs = [" ".join(command["argv"]) for command in commands]
    assert all(
        argv.startswith("--context staging --namespace")
        or argv.startswith("--context staging apply")
        for argv in argvs
    ), argvs
    for plane in Plane:
        kind = "statefulset" if plane is Plane.BREAKGLASS else "deployment"
        namespace = f"--context staging --namespace appliance-{plane.value}"
        assert f"{namespace} get {kind}/appliance --output=name" in argvs
        grace = "--grace-period=1" if plane is Plane.BREAKGLASS else "--grace-period=0 --force"
        assert (
            f"{namespace} delete pod --selector app.kubernetes.io/component={plane.value} "
            f"{grace} --wait=false"
        ) in argvs
        assert f"{namespace} rollout status {kind}/appliance --timeout=120s" in argvs
        assert f"{namespace} get networkpolicy appliance --output=json" in argvs
    applied = [
        json.loads(c["stdin"]) for c in commands if c["argv"][2:4] == ["apply", "--filename=-"]
    ]
    # Each plane's policy is applied twice: cut (no PostgreSQL egress), then restored.
    assert len(applied) == 2 * len(Plane)
    cut = [policy for policy in applied if len(policy["spec"]["egress"]) == 1]
    assert len(cut) == len(Plane)

    result = json.loads((tmp_path / "report" / "result.json").read_text())
    assert result["driver"] == "kubernetes"
    assert result["passed"] is True
    assert result["org"].startswith("chaos-")
    assert "cut PostgreSQL from every plane" in [fault["action"] for fault in result["faults"]]
    assert "with the kubernetes driver" in (tmp_path / "report" / "report.md").read_text()


def test_deployment_dsn_needs_tls() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "chaos",
            "run",
            "--driver",
            "kubernetes",
            "--database-url",
            "postgresql://drill:x@db.example:5432/appliance?sslmode=disable",
            *plane_url_options(),
        ],
    )

    assert result.exit_code == 2, result.output
    assert "must use TLS" in result.output
