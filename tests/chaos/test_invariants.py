"""Invariant bookkeeping: excused windows, outcomes and the report files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from chaos.invariants import always_issues, percentile, restart_times, saturation
from chaos.report import write_report
from chaos.workload import Recorder, Sample


def sample(stream: str, at: float, ok: bool, latency_ms: float = 10.0) -> Sample:
    return Sample(stream, at, ok, latency_ms, "drill", error=None if ok else "HTTP 503")


def test_failure_inside_excuse_is_excused() -> None:
    recorder = Recorder(started=0.0)
    recorder.excuses = [("pim", 5.0, 8.0)]

    recorder.record(sample("pim", 6.0, False))
    recorder.record(sample("pim", 4.5, False, latency_ms=600.0))
    recorder.record(sample("pim", 8.5, False))
    recorder.record(sample("breakglass", 6.0, False))

    assert [s.excused for s in recorder.samples] == [True, True, False, False]


def test_open_excuse_covers_later_samples() -> None:
    recorder = Recorder(started=0.0)
    recorder.excuses = [("auth", 5.0, None)]

    recorder.record(sample("auth", 50.0, False))

    assert recorder.samples[0].excused


def test_always_issues_fails_on_counted_failure() -> None:
    recorder = Recorder(started=0.0)
    recorder.record(sample("breakglass", 1.0, True))
    recorder.record(sample("breakglass", 2.0, False))

    outcome = always_issues(recorder, "breakglass", "bg", "test")

    assert not outcome.passed
    assert "1 failed" in outcome.details[0]


def test_always_issues_needs_success_per_scenario() -> None:
    recorder = Recorder(started=0.0)
    recorder.record(sample("breakglass", 1.0, True))
    recorder.scenario = "other"
    recorder.excuses = [("breakglass", 0.0, None)]
    recorder.record(Sample("breakglass", 3.0, False, 5.0, "other", error="refused"))

    outcome = always_issues(recorder, "breakglass", "bg", "test")

    assert not outcome.passed
    assert outcome.details[-1] == "no successful attempt in: other"


def test_restart_over_two_seconds_fails() -> None:
    assert restart_times([("s", "pim", 1.2)]).passed
    assert not restart_times([("s", "pim", 1.2), ("s", "auth", 2.4)]).passed
    assert not restart_times([]).passed


def test_saturation_ratio_limit() -> None:
    assert saturation([("pim-probe", 40.0, 59.0)]).passed
    assert not saturation([("pim-probe", 40.0, 61.0)]).passed
    assert not saturation([("pim-probe", None, 20.0)]).passed


def test_percentile_of_hundred_values() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([], 0.99) is None


def test_report_files_are_written(tmp_path: Path) -> None:
    result = {
        "finished_at": "2026-12-04T00:00:00+00:00",
        "passed": False,
        "duration_seconds": 20.0,
        "invariants": [
            {
                "name": "breakglass-always-issues",
                "description": "d",
                "passed": False,
                "details": ["t=3.0s [x] HTTP 503 <busy>"],
            }
        ],
        "scenarios": [
            {
                "name": "x",
                "description": "breaks x",
                "started": 1.0,
                "finished": 9.0,
                "problems": [],
                "notes": ["n"],
            }
        ],
        "faults": [{"at": 2.0, "scenario": "x", "action": "stop PostgreSQL & friends"}],
        "restarts": [],
        "latency_ms": {
            "breakglass": {"attempts": 2, "succeeded": 1, "p50": 5.0, "p99": 5.0, "max": 5.0}
        },
        "samples": [
            {"stream": "breakglass", "at": 1.0, "ok": True, "latency_ms": 5.0, "excused": False},
            {"stream": "breakglass", "at": 3.0, "ok": False, "latency_ms": 9.0, "excused": False},
            {"stream": "pim", "at": 3.0, "ok": False, "latency_ms": 9.0, "excused": True},
        ],
    }

    paths = write_report(result, tmp_path)

    markdown = paths["markdown"].read_text()
    assert markdown.startswith("# Chaos drill: FAILED")
    assert "| breakglass-always-issues | **FAIL** |" in markdown
    assert "| 2.0 | x | stop PostgreSQL & friends |" in markdown
    svg = ET.parse(paths["timeline"]).getroot()  # noqa: S314 (a file this test wrote)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [element.text for element in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "stop PostgreSQL &amp; friends" not in texts
    assert "stop PostgreSQL & friends" in texts
