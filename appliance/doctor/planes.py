"""Health, readiness and clock checks of each plane over HTTP."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from appliance.doctor.findings import (
    RUNBOOK_DATABASE_OUTAGE,
    RUNBOOK_ROLLBACK,
    Finding,
)

HTTP_TIMEOUT_SECONDS = 3.0
# The Date header has one-second resolution, so smaller offsets are noise. Five
# seconds stays well inside the skew that tokens and TOTP tolerate.
MAX_CLOCK_SKEW_SECONDS = 5.0
# With the database up, break-glass refreshes its snapshot at least once a
# minute; three minutes without a refresh means the refresh loop is stuck.
MAX_SNAPSHOT_AGE_SECONDS = 180


@dataclass
class Response:
    status: int
    body: Any
    skew_seconds: float | None


def fetch(url: str) -> Response:
    """GET url; return status, JSON body and the clock offset from its Date header."""
    sent = time.time()
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as answer:  # noqa: S310
            status, raw, date = answer.status, answer.read(), answer.headers.get("Date")
    except urllib.error.HTTPError as error:
        status, raw, date = error.code, error.read(), error.headers.get("Date")
    received = time.time()
    skew = None
    if date:
        skew = parsedate_to_datetime(date).timestamp() - (sent + received) / 2
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return Response(status, body, skew)


def check_plane(plane: str, base_url: str) -> list[Finding]:
    """Check /healthz, /readyz and the Date header of one plane."""
    base = base_url.rstrip("/")
    try:
        health = fetch(f"{base}/healthz")
    except (OSError, ValueError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        return [
            Finding(
                f"{plane}: health",
                "fail",
                f"{base}/healthz unreachable ({reason}); check the plane's process and logs, "
                "and roll back if a release broke it",
                RUNBOOK_ROLLBACK,
            )
        ]
    findings: list[Finding] = []
    if health.status != 200:
        findings.append(
            Finding(
                f"{plane}: health",
                "fail",
                f"{base}/healthz returned HTTP {health.status}",
                RUNBOOK_ROLLBACK,
            )
        )
    else:
        findings.append(Finding(f"{plane}: health", "ok", f"{base}/healthz returned 200"))
    try:
        ready = fetch(f"{base}/readyz")
    except (OSError, ValueError, http.client.HTTPException) as error:
        findings.append(
            Finding(
                f"{plane}: readiness", "fail", f"{base}/readyz failed: {error}", RUNBOOK_ROLLBACK
            )
        )
        return findings
    detail = (
        (ready.body or {}).get("planes", {}).get(plane) if isinstance(ready.body, dict) else None
    )
    if plane == "breakglass" and isinstance(detail, dict):
        findings.extend(_breakglass_findings(ready.status, detail))
    elif ready.status == 200:
        findings.append(Finding(f"{plane}: readiness", "ok", "ready"))
    else:
        findings.append(
            Finding(
                f"{plane}: readiness",
                "fail",
                f"not ready (HTTP {ready.status}): {detail or ready.body}",
                RUNBOOK_DATABASE_OUTAGE if "database" in str(detail) else RUNBOOK_ROLLBACK,
            )
        )
    findings.append(
        _skew_finding(f"{plane}: clock", health.skew_seconds, "the plane's Date header")
    )
    return findings


def _breakglass_findings(status: int, detail: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    age = detail.get("snapshot_age_seconds")
    backlog = detail.get("journal_backlog")
    if detail.get("database") != "reachable":
        findings.append(
            Finding(
                "breakglass: readiness",
                "fail" if status != 200 else "warn",
                f"degraded: {detail.get('mode', 'database unreachable')}",
                RUNBOOK_DATABASE_OUTAGE,
            )
        )
    elif status != 200:
        findings.append(
            Finding("breakglass: readiness", "fail", f"not ready: {detail}", RUNBOOK_ROLLBACK)
        )
    else:
        findings.append(Finding("breakglass: readiness", "ok", "ready, database reachable"))
    if age is None:
        findings.append(
            Finding(
                "breakglass: snapshot",
                "fail",
                "no snapshot: activation needs the database",
                RUNBOOK_DATABASE_OUTAGE,
            )
        )
    elif detail.get("database") == "reachable" and age > MAX_SNAPSHOT_AGE_SECONDS:
        findings.append(
            Finding(
                "breakglass: snapshot",
                "warn",
                f"snapshot is {age}s old although the database is reachable "
                f"(refreshed at least every 60s normally)",
                RUNBOOK_DATABASE_OUTAGE,
            )
        )
    else:
        findings.append(Finding("breakglass: snapshot", "ok", f"snapshot age {age}s"))
    if backlog:
        findings.append(
            Finding(
                "breakglass: journal",
                "warn",
                f"{backlog} journal entries not yet replayed into PostgreSQL",
                RUNBOOK_DATABASE_OUTAGE,
            )
        )
    else:
        findings.append(Finding("breakglass: journal", "ok", "journal backlog 0"))
    return findings


def _skew_finding(check: str, skew: float | None, source: str) -> Finding:
    if skew is None:
        return Finding(check, "skipped", f"no time from {source}")
    if abs(skew) > MAX_CLOCK_SKEW_SECONDS:
        return Finding(
            check,
            "warn",
            f"{source} differs from this host's clock by {skew:+.0f}s (limit "
            f"{MAX_CLOCK_SKEW_SECONDS:.0f}s): TOTP codes and token expiry depend on it; "
            "check NTP on both hosts",
        )
    return Finding(check, "ok", f"offset {skew:+.1f}s from {source}")
