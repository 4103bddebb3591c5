"""`appliance chaos`: drills that break planes and PostgreSQL while checking invariants.

The drill code lives in the top-level `chaos` package; it is imported when a
command runs, so `appliance --help` stays fast.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import click

from appliance.settings import Plane


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
    "--driver",
    type=click.Choice(["local", "kubernetes"]),
    default="local",
    show_default=True,
    help="local: start the planes as processes on this machine. kubernetes: break a "
    "staging deployment of the split topology with kubectl (needs --plane-url and "
    "--database-url).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local driver: folder for the drill's embedded PostgreSQL, secrets and logs; it must "
    "be new or empty (default: a fresh folder under /tmp, deleted afterwards).",
)
@click.option(
    "--database-url",
    envvar="APPLIANCE_CHAOS_DATABASE_URL",
    default=None,
    help="Local driver: run against this PostgreSQL server instead of an embedded one; the "
    "drill creates a database and plane roles named chaos_<random> on it and drops them "
    "afterwards, so the role needs SUPERUSER, or CREATEDB, CREATEROLE and BYPASSRLS. "
    "Kubernetes driver: the deployment's own database, where the drill creates its org; "
    "the role needs SUPERUSER, or owns the schema and has BYPASSRLS. A TCP DSN needs "
    "sslmode=require or stricter. Give the password in PGPASSWORD or ~/.pgpass. "
    "The drill never stops a server it did not start: postgres-stop-start cuts it from "
    "every plane instead.",
)
@click.option(
    "--keep-data",
    is_flag=True,
    help="Local driver: keep the default data folder, and the database and roles on a "
    "--database-url server, after the drill.",
)
@click.option(
    "--short", is_flag=True, help="Hold each fault for 4 s instead of 8 s (the CI drill's pace)."
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65530),
    default=None,
    help="Local driver: port of the auth plane; admin, pim and breakglass use the next three "
    "(default: a free block).",
)
@click.option(
    "--plane-url",
    "plane_urls",
    multiple=True,
    metavar="PLANE=URL",
    help="Kubernetes driver: public base URL of a plane, for example "
    "breakglass=https://breakglass.example.com; give all four planes.",
)
@click.option("--context", default=None, help="Kubernetes driver: kubectl context to use.")
@click.option(
    "--kubectl",
    default="kubectl",
    show_default=True,
    help="Kubernetes driver: kubectl executable.",
)
@click.option(
    "--replicas",
    type=click.IntRange(1, 20),
    default=2,
    show_default=True,
    help="Kubernetes driver: replicas a plane is scaled back to after a scale-down.",
)
def run_command(
    scenario: tuple[str, ...],
    report_dir: Path,
    driver: str,
    data_dir: Path | None,
    database_url: str | None,
    keep_data: bool,
    short: bool,
    base_port: int | None,
    plane_urls: tuple[str, ...],
    context: str | None,
    kubectl: str,
    replicas: int,
) -> None:
    """Run SCENARIO ... (every scenario when none is given) and write the report.

    The local driver starts an embedded PostgreSQL (or uses --database-url) and
    the four planes as processes on 127.0.0.1. The kubernetes driver acts on a
    staging cluster. Either way the drill runs break-glass, PIM and auth
    requests throughout, breaks things, and writes the report. Exits 1 when an
    invariant fails. See `appliance chaos list`.
    """
    import asyncpg
    import httpx

    from chaos.database import DrillDatabaseError
    from chaos.kubernetes import KubectlError, NotAvailable
    from chaos.run import ScenarioUnsupported, run_drill, run_kubernetes_drill
    from chaos.runner import Pace
    from chaos.scenarios import BY_NAME

    unknown = [name for name in scenario if name not in BY_NAME]
    if unknown:
        raise click.BadParameter(
            f"unknown scenario {', '.join(unknown)}; `appliance chaos list` shows them",
            param_hint="SCENARIO",
        )
    pace = Pace.short() if short else Pace()
    began = time.monotonic()
    if driver == "kubernetes":
        _reject_local_options(data_dir=data_dir, keep_data=keep_data, base_port=base_port)
        if not database_url:
            raise click.UsageError("--driver kubernetes needs --database-url")
        drill = run_kubernetes_drill(
            scenario,
            report_dir=report_dir,
            urls=parse_plane_urls(plane_urls),
            database_url=database_url,
            context=context,
            kubectl=kubectl,
            replicas=replicas,
            pace=pace,
            progress=click.echo,
        )
    else:
        if plane_urls or context:
            raise click.UsageError("--plane-url and --context need --driver kubernetes")
        if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
            raise click.BadParameter(
                f"{data_dir} is not empty: a drill needs a fresh data folder",
                param_hint="--data-dir",
            )
        drill = run_drill(
            scenario,
            report_dir=report_dir,
            data_dir=data_dir.resolve() if data_dir else None,
            database_url=database_url,
            base_port=base_port,
            pace=pace,
            keep_data=keep_data,
            progress=click.echo,
        )
    try:
        outcome = asyncio.run(drill)
    except ScenarioUnsupported as error:
        raise click.BadParameter(str(error), param_hint="SCENARIO") from None
    except DrillDatabaseError as error:
        raise click.BadParameter(str(error), param_hint="--database-url") from None
    except (NotAvailable, KubectlError) as error:
        raise click.ClickException(f"the drill could not start: {error}") from None
    except (RuntimeError, OSError, asyncpg.PostgresError, httpx.HTTPError) as error:
        # Set-up failures outside a scenario: a plane that did not start, PostgreSQL or
        # a plane that stopped responding. Failures inside a scenario go to the report.
        raise click.ClickException(f"the drill could not run: {error}") from None
    for invariant in outcome.result["invariants"]:
        mark = "pass" if invariant["passed"] else "FAIL"
        click.echo(f"{mark:<5} {invariant['name']}")
    for skipped in outcome.result["skipped"]:
        click.echo(f"skip  {skipped['name']}: {skipped['reason']}")
    click.echo(
        f"drill {'passed' if outcome.passed else 'FAILED'} in {time.monotonic() - began:.0f}s; "
        f"report: {outcome.report['markdown']}"
    )
    if not outcome.passed:
        raise SystemExit(1)


def parse_plane_urls(values: tuple[str, ...]) -> dict[Plane, str]:
    """Parse `PLANE=URL` values; every plane must appear exactly once."""
    urls: dict[Plane, str] = {}
    for value in values:
        name, _, url = value.partition("=")
        try:
            plane = Plane(name)
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: plane must be one of {', '.join(p.value for p in Plane)}",
                param_hint="--plane-url",
            ) from None
        if not url.startswith(("https://", "http://")) or not urlsplit(url).hostname:
            raise click.BadParameter(
                f"{value!r}: the URL must start with https:// or http:// and name a host",
                param_hint="--plane-url",
            )
        if plane in urls:
            raise click.BadParameter(f"{plane.value} is given twice", param_hint="--plane-url")
        urls[plane] = url
    missing = [plane.value for plane in Plane if plane not in urls]
    if missing:
        raise click.BadParameter(
            f"no URL for {', '.join(missing)}; give PLANE=URL for all four planes",
            param_hint="--plane-url",
        )
    return urls


def _reject_local_options(*, data_dir: Path | None, keep_data: bool, base_port: int | None) -> None:
    local_options = [
        name
        for name, value in (
            ("--data-dir", data_dir is not None),
            ("--keep-data", keep_data),
            ("--base-port", base_port is not None),
        )
        if value
    ]
    if local_options:
        raise click.UsageError(f"{', '.join(local_options)} apply to the local driver only")
