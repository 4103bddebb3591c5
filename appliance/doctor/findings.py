"""Findings of the doctor checks, the runbook each points to, and their rendering."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail", "skipped"]

RUNBOOK_DATABASE_OUTAGE = "runbooks/database-outage.md"
RUNBOOK_ROLLBACK = "runbooks/kubernetes-rollback.md"
RUNBOOK_KEYS = "runbooks/signing-key-compromise.md"
RUNBOOK_BREAKGLASS = "runbooks/breakglass-activate.md"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str
    runbook: str | None = None


def problems(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.status in ("warn", "fail")]


def render_text(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.status.upper():<7} {finding.check:<28} {finding.message}")
        if finding.runbook and finding.status in ("warn", "fail"):
            lines.append(f"{'':<8}{'':<28} -> open {finding.runbook}")
    wrong = problems(findings)
    if wrong:
        runbooks = sorted({f.runbook for f in wrong if f.runbook})
        lines.append(
            f"{len(wrong)} problem(s) found; runbooks to open: {', '.join(runbooks) or '-'}"
        )
    else:
        lines.append("all checks passed")
    return "\n".join(lines)


def render_json(findings: list[Finding]) -> str:
    return json.dumps(
        {"ok": not problems(findings), "findings": [asdict(finding) for finding in findings]},
        indent=2,
    )
