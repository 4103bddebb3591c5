"""`appliance chaos`: drills that break planes and PostgreSQL while checking invariants.

The drill code lives in the top-level `chaos` package; it is imported when a
command runs, so `appliance --help` stays fast.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click


@click.group()
def chaos() -> None:
    """Chaos drills: break planes and PostgreSQL while a workload runs, and check invariants."""
    try:
        import chaos as _package  # noqa: F401
    except ModuleNotFoundError:
        raise click.ClickException(
            "the `chaos` package is not importable: it ships in the source tree only, so run "
            "`python -m chaos` or `python -m appliance chaos` from the repository root"
        ) from None


@chaos.command("list")
def list_command() -> None:
    """List the scenarios with what each one breaks."""
    from chaos.scenarios import SCENARIOS, SHORT

    for scenario in SCENARIOS:
        short = " (in --short)" if scenario.name in SHORT else ""
        click.echo(f"{scenario.name}{short}\n    {scenario.description}")


@chaos.command("run")
@click.argument("scenario", nargs=-1)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("chaos-report"),
    show_default=True,
    help="Folder for result.json, report.md and timeline.svg.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the drill's embedded PostgreSQL, secrets and logs; it must be new or empty "
    "(default: a fresh folder under /tmp, deleted afterwards).",
)
@click.option("--keep-data", is_flag=True, help="Keep the default data folder after the drill.")
@click.option(
    "--short", is_flag=True, help="Hold each fault for 4 s instead of 8 s (the CI drill's pace)."
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65530),
    default=None,
    help="Port of the auth plane; admin, pim and breakglass use the next three "
    "(default: a free block).",
)
def run_command(
    scenario: tuple[str, ...],
    report_dir: Path,
    data_dir: Path | None,
    keep_data: bool,
    short: bool,
    base_port: int | None,
) -> None:
    """Run SCENARIO ... (every scenario when none is given) on a fresh deployment.

    Starts an embedded PostgreSQL and the four planes as processes on 127.0.0.1,
    runs break-glass, PIM and auth requests throughout, breaks things, and writes
    the report. Exits 1 when an invariant fails. See `appliance chaos list`.
    """
    from chaos.run import run_drill
    from chaos.runner import Pace
    from chaos.scenarios import BY_NAME

    unknown = [name for name in scenario if name not in BY_NAME]
    if unknown:
        raise click.BadParameter(
            f"unknown scenario {', '.join(unknown)}; `appliance chaos list` shows them",
            param_hint="SCENARIO",
        )
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise click.BadParameter(
            f"{data_dir} is not empty: a drill needs a fresh data folder", param_hint="--data-dir"
        )
    began = time.monotonic()
    try:
        outcome = asyncio.run(
            run_drill(
                scenario,
                report_dir=report_dir,
                data_dir=data_dir.resolve() if data_dir else None,
                base_port=base_port,
                pace=Pace.short() if short else Pace(),
                keep_data=keep_data,
                progress=click.echo,
            )
        )
    except RuntimeError as error:
        raise click.ClickException(f"the drill could not run: {error}") from None
    for invariant in outcome.result["invariants"]:
        mark = "pass" if invariant["passed"] else "FAIL"
        click.echo(f"{mark:<5} {invariant['name']}")
    click.echo(
        f"drill {'passed' if outcome.passed else 'FAILED'} in {time.monotonic() - began:.0f}s; "
        f"report: {outcome.report['markdown']}"
    )
    if not outcome.passed:
        raise SystemExit(1)
