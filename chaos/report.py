"""The drill report: a JSON result, a Markdown page and an SVG timeline."""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path
from typing import Any

from chaos.runner import write_json

WIDTH = 1100
ROW_HEIGHT = 150
MARGIN_LEFT = 70
MARGIN_RIGHT = 20
# Dots are successful requests; red is kept for failures only.
COLORS = {"breakglass": "#7d3c98", "pim": "#2471a3", "auth": "#7d8c8d"}
TIMELINE_STREAMS = ["breakglass", "pim", "auth"]
LABEL_FONT_SIZE = 9
LABEL_LINE = 11
# An estimate of the mean sans-serif character width at LABEL_FONT_SIZE, in pixels.
LABEL_CHAR_WIDTH = 5.5


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(result: dict[str, Any], svg_name: str) -> str:
    verdict = "PASSED" if result["passed"] else "FAILED"
    lines = [
        f"# Chaos drill: {verdict}",
        "",
        f"Finished {result['finished_at']}, ran {result['duration_seconds']} s with the "
        f"{result.get('driver', 'local')} driver against {result.get('database', 'PostgreSQL')}, "
        f"in org {result.get('org', '-')}.",
        "",
        *[f"Skipped {item['name']}: {item['reason']}." for item in result.get("skipped", [])],
        *([""] if result.get("skipped") else []),
        *(
            [f"Cleaning up failed: {result['cleanup_error']}", ""]
            if result.get("cleanup_error")
            else []
        ),
        f"![timeline]({svg_name})",
        "",
        "## Invariants",
        "",
        "| invariant | outcome | what it checks |",
        "|---|---|---|",
    ]
    for outcome in result["invariants"]:
        mark = "pass" if outcome["passed"] else "**FAIL**"
        lines.append(f"| {outcome['name']} | {mark} | {outcome['description']} |")
    for outcome in result["invariants"]:
        if outcome["details"]:
            lines += ["", f"### {outcome['name']}", ""]
            lines += [f"- {detail}" for detail in outcome["details"]]
    lines += ["", "## Scenarios", ""]
    for scenario in result["scenarios"]:
        state = "problems" if scenario["problems"] else "ok"
        lines.append(
            f"### {scenario['name']} ({state}, "
            f"{scenario['started']:.1f}–{scenario['finished']:.1f} s)"
        )
        lines += ["", scenario["description"], ""]
        lines += [f"- note: {note}" for note in scenario["notes"]]
        lines += [f"- problem: {problem}" for problem in scenario["problems"]]
        lines.append("")
    lines += ["## What was broken when", "", "| time (s) | scenario | action |", "|---|---|---|"]
    lines += [f"| {f['at']:.1f} | {f['scenario']} | {f['action']} |" for f in result["faults"]]
    lines += [
        "",
        "## Latency (successful requests, ms)",
        "",
        "| stream | attempts | succeeded | p50 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for stream, row in result["latency_ms"].items():
        lines.append(
            f"| {stream} | {row['attempts']} | {row['succeeded']} | {_fmt(row['p50'])} | "
            f"{_fmt(row['p99'])} | {_fmt(row['max'])} |"
        )
    return "\n".join(lines) + "\n"


def timeline_svg(result: dict[str, Any]) -> str:
    """Draw latency (log scale) and success of each stream over time, with each fault marked."""
    duration = max(1.0, float(result["duration_seconds"]))
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT

    def x(at: float) -> float:
        return MARGIN_LEFT + plot_width * at / duration

    labels = [
        (x(f["at"]), f["scenario"] if f["action"] == "scenario starts" else f["action"])
        for f in result["faults"]
    ]
    lanes = label_lanes(labels)
    height = 40 + ROW_HEIGHT * len(TIMELINE_STREAMS) + LABEL_LINE * (max(lanes, default=0) + 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN_LEFT}" y="16" font-size="13">'
        "Issuance latency (ms, log scale) over time: dots succeeded, red ticks failed, "
        "grey ticks excused (plane down on purpose), dashed lines faults</text>",
    ]
    for row, stream in enumerate(TIMELINE_STREAMS):
        top = 30 + row * ROW_HEIGHT
        bottom = top + ROW_HEIGHT - 20
        parts.append(
            f'<rect x="{MARGIN_LEFT}" y="{top}" width="{plot_width}" height="{bottom - top}" '
            'fill="none" stroke="#bbb"/>'
        )
        parts.append(f'<text x="4" y="{top + 12}" font-weight="bold">{stream}</text>')
        for label, value in (
            ("1", 1.0),
            ("10", 10.0),
            ("100", 100.0),
            ("1s", 1000.0),
            ("10s", 10000.0),
        ):
            y = _latency_y(value, top, bottom)
            parts.append(
                f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="#eee"/>'
            )
            parts.append(
                f'<text x="{MARGIN_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
            )
        for sample in result["samples"]:
            if sample["stream"] != stream:
                continue
            cx = x(sample["at"])
            if sample["ok"]:
                cy = _latency_y(sample["latency_ms"], top, bottom)
                parts.append(
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="1.8" fill="{COLORS[stream]}"/>'
                )
            else:
                color = "#999" if sample["excused"] else "#e00"
                parts.append(
                    f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{bottom - 10}" y2="{bottom}" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
    plot_bottom = 30 + ROW_HEIGHT * len(TIMELINE_STREAMS) - 20
    for fault, (fx, label), lane in zip(result["faults"], labels, lanes, strict=True):
        scenario_start = fault["action"] == "scenario starts"
        stroke = "#333" if scenario_start else "#d68910"
        y = plot_bottom + 12 + lane * LABEL_LINE
        parts.append(
            f'<line x1="{fx:.1f}" x2="{fx:.1f}" y1="26" y2="{y - 8}" stroke="{stroke}" '
            'stroke-dasharray="4,3"/>'
        )
        _, _, at_end = label_extent(fx, label)
        anchor = f'x="{fx - 2:.1f}" text-anchor="end"' if at_end else f'x="{fx + 2:.1f}"'
        parts.append(
            f'<text {anchor} y="{y}" font-size="{LABEL_FONT_SIZE}">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def label_extent(fx: float, label: str) -> tuple[float, float, bool]:
    """Return (left, right, anchored at the end) of a label drawn beside the line at `fx`.

    A label that would run past the picture's right edge is drawn left of its line.
    Widths are estimated from the character count at `LABEL_FONT_SIZE`.
    """
    width = 2 + len(label) * LABEL_CHAR_WIDTH
    if fx + width > WIDTH:
        return fx - width, fx, True
    return fx, fx + width, False


def label_lanes(labels: list[tuple[float, str]]) -> list[int]:
    """Return a text line for each (x, label) so that labels on one line do not overlap.

    Each label takes the first line whose previous label ends left of where it starts.
    """
    line_ends: list[float] = []
    lanes: list[int] = []
    for fx, label in labels:
        left, right, _ = label_extent(fx, label)
        lane = next((i for i, end in enumerate(line_ends) if end < left), len(line_ends))
        if lane == len(line_ends):
            line_ends.append(right)
        else:
            line_ends[lane] = right
        lanes.append(lane)
    return lanes


def _latency_y(latency_ms: float, top: float, bottom: float) -> float:
    import math

    clamped = min(max(latency_ms, 1.0), 10000.0)
    return bottom - (bottom - top) * math.log10(clamped) / 4


def write_report(result: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Write result.json, report.md and timeline.svg (and timeline.png when a converter exists)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "result.json",
        "markdown": directory / "report.md",
        "timeline": directory / "timeline.svg",
    }
    write_json(paths["json"], result)
    paths["timeline"].write_text(timeline_svg(result), "utf-8")
    paths["markdown"].write_text(markdown(result, paths["timeline"].name), "utf-8")
    convert = shutil.which("convert") or shutil.which("rsvg-convert")
    if convert is not None:
        png = directory / "timeline.png"
        argv = [convert, str(paths["timeline"]), str(png)]
        if convert.endswith("rsvg-convert"):
            argv = [convert, "-o", str(png), str(paths["timeline"])]
        if subprocess.run(argv, capture_output=True, check=False, timeout=60).returncode == 0:  # noqa: S603
            paths["png"] = png
    return paths
