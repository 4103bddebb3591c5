"""`appliance chaos list` and `appliance chaos run` argument handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from appliance.cli.main import cli
from chaos.scenarios import SCENARIOS


def test_list_names_every_scenario() -> None:
    result = CliRunner().invoke(cli, ["chaos", "list"])

    assert result.exit_code == 0
    for scenario in SCENARIOS:
        assert scenario.name in result.output
        assert scenario.description in result.output


def test_run_rejects_unknown_scenario() -> None:
    result = CliRunner().invoke(cli, ["chaos", "run", "kill-everything"])

    assert result.exit_code == 2
    assert "unknown scenario kill-everything" in result.output


def test_run_rejects_used_data_dir(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x")

    result = CliRunner().invoke(cli, ["chaos", "run", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "is not empty" in result.output


def chaos_installed() -> bool:
    """Return whether `chaos` imports outside the source tree, as an installed package."""
    probe = subprocess.run(
        [sys.executable, "-c", "import chaos"],
        cwd="/",
        capture_output=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def test_python_m_chaos_lists_scenarios(tmp_path: Path) -> None:
    # From another working directory, so the installed packages are what is imported.
    assert chaos_installed(), "chaos is not installed: packages.find must include chaos*"
    result = subprocess.run(
        [sys.executable, "-m", "chaos", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "postgres-stop-start" in result.stdout
