"""The drill's invariants: each turns the recorded samples and audit trail into an outcome."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from appliance.audit.verify import ChainBroken, verify_chain
from appliance.db.queries.audit import AUDIT_EVENTS_BY_TYPE
from chaos.workload import Recorder, Sample

# A killed plane must serve again within this many seconds of its restart.
MAX_RESTART_SECONDS = 2.0
# Saturating the auth plane may raise another plane's p99 latency by at most this factor.
MAX_P99_RATIO = 1.5


@dataclass
class Outcome:
    name: str
    description: str
    passed: bool
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "passed": self.passed,
            "details": self.details,
        }


def percentile(values: Iterable[float], fraction: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def _failures(samples: list[Sample], stream: str) -> list[Sample]:
    return [s for s in samples if s.stream == stream and not s.ok and not s.excused]


def always_issues(recorder: Recorder, stream: str, name: str, description: str) -> Outcome:
    attempts = [s for s in recorder.samples if s.stream == stream and not s.excused]
    failures = _failures(recorder.samples, stream)
    details = [f"{len(attempts)} attempts counted, {len(failures)} failed"]
    details += [f"t={s.at:.1f}s [{s.scenario}] {s.error}" for s in failures[:20]]
    scenarios = {s.scenario for s in recorder.samples} - {"setup"}
    without = sorted(
        sc
        for sc in scenarios
        if not any(s.stream == stream and s.scenario == sc and s.ok for s in recorder.samples)
    )
    if without:
        details.append("no successful attempt in: " + ", ".join(without))
    return Outcome(name, description, not failures and not without and bool(attempts), details)


def independent_verifier(recorder: Recorder, available: bool) -> Outcome:
    checked = recorder.npm_results
    failed = [r for r in checked if not r[2]]
    details = [f"{len(checked)} credentials sent to the npm verifier, {len(failed)} rejected"]
    if not available:
        details.append("npm verifier unavailable: node or tests/interop/node_modules is missing")
    details += [f"{stream} {jti}: {detail}" for stream, jti, _, detail in failed[:10]]
    streams = {r[0] for r in checked if r[2]}
    passed = available and not failed and {"breakglass", "pim"} <= streams
    return Outcome(
        "independent-verifier",
        "a sample of break-glass and PIM credentials verifies with @sd-jwt/sd-jwt-vc on Node",
        passed,
        details,
    )


def lifetime_policy(recorder: Recorder) -> Outcome:
    return Outcome(
        "lifetime-within-policy",
        "exp - iat of every credential is within its policy",
        not recorder.policy_violations,
        recorder.policy_violations[:20],
    )


def restart_times(restarts: list[tuple[str, str, float]]) -> Outcome:
    slow = [r for r in restarts if r[2] > MAX_RESTART_SECONDS]
    details = [
        f"[{scenario}] {plane} served after {seconds:.2f}s" for scenario, plane, seconds in restarts
    ]
    return Outcome(
        "restart-within-2s",
        f"a restarted plane serves within {MAX_RESTART_SECONDS:.0f} s",
        bool(restarts) and not slow,
        details,
    )


def saturation(ratios: list[tuple[str, float | None, float | None]]) -> Outcome:
    details = []
    passed = bool(ratios)
    for stream, baseline, loaded in ratios:
        if baseline is None or loaded is None:
            details.append(f"{stream}: no latency samples")
            passed = False
            continue
        ratio = loaded / baseline
        details.append(
            f"{stream}: p99 {baseline:.1f} ms before, {loaded:.1f} ms while auth saturated "
            f"(x{ratio:.2f})"
        )
        passed = passed and ratio <= MAX_P99_RATIO
    return Outcome(
        "saturation-isolation",
        "saturating the auth plane raises another plane's p99 "
        f"latency by no more than {round((MAX_P99_RATIO - 1) * 100)}%",
        passed,
        details,
    )


async def audit_check(
    conn: asyncpg.Connection, org_id: UUID, recorder: Recorder, scenario: str
) -> list[str]:
    """Return each acknowledged credential missing from or repeated in the chain, and a break."""
    problems: list[str] = []
    for stream, event_type in (
        ("breakglass", "breakglass.activated"),
        ("pim", "pim.credential.issued"),
    ):
        rows = await conn.fetch(AUDIT_EVENTS_BY_TYPE, org_id, event_type)
        seen: Counter[str] = Counter()
        for row in rows:
            data = row["data"]
            if isinstance(data, str):
                data = json.loads(data)
            if row["outcome"] == "success" and data and data.get("credential_id"):
                seen[str(data["credential_id"])] += 1
        acknowledged = [
            s.credential_id
            for s in recorder.samples
            if s.stream == stream and s.ok and s.credential_id
        ]
        for credential_id in acknowledged:
            count = seen.get(credential_id, 0)
            if count != 1:
                problems.append(
                    f"[{scenario}] {stream} credential {credential_id} appears {count} "
                    f"times in {event_type} events"
                )
    try:
        await verify_chain(conn, org_id)
    except ChainBroken as error:
        problems.append(f"[{scenario}] {error}")
    return problems
