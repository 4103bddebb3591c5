"""The PIM model: role policies, request states and their JSON form."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

# A request's life (`pim_requests.status`); `state` adds what time decides.
PENDING: Final = "pending"
GRANTED: Final = "granted"
ENDED: Final = "ended"
# Derived states of a granted request.
SCHEDULED: Final = "scheduled"
ACTIVE: Final = "active"
EXPIRED: Final = "expired"

MIN_DURATION_SECONDS: Final = 60
# A pending request waits this long for its approvals unless the policy sets another time.
DEFAULT_PENDING_TTL_SECONDS: Final = 3600


@dataclass(frozen=True)
class Policy:
    """The rules for requesting a role. Durations are in seconds.

    Patterns are Python regular expressions that must match the whole value.
    """

    max_duration_seconds: int
    approvals_required: int
    justification_required: bool = True
    justification_pattern: str | None = None
    ticket_required: bool = False
    ticket_pattern: str | None = None
    totp_step_up: bool = False
    pending_ttl_seconds: int = DEFAULT_PENDING_TTL_SECONDS
    allow_future_start: bool = False
    max_start_delay_seconds: int = 7 * 24 * 3600

    def check(self) -> None:
        """Raise ValueError for a value the database rejects or a pattern that does not compile."""
        if not MIN_DURATION_SECONDS <= self.max_duration_seconds <= 7 * 24 * 3600:
            raise ValueError("max_duration_seconds must be between 60 and 604800")
        if not 0 <= self.approvals_required <= 10:
            raise ValueError("approvals_required must be between 0 and 10")
        if not 60 <= self.pending_ttl_seconds <= 7 * 24 * 3600:
            raise ValueError("pending_ttl_seconds must be between 60 and 604800")
        for name in ("justification_pattern", "ticket_pattern"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(
                        f"{name} {pattern!r} is not a valid regular expression: {error}"
                    ) from None

    @classmethod
    def from_row(cls, row: Any) -> Policy:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def request_state(row: Any, now: datetime) -> str:
    """Return the state shown: pending, denied, expired, cancelled, scheduled, active or ended."""
    status: str = row["status"]
    if status == PENDING and row["expires_at"] <= now:
        return EXPIRED
    if status == GRANTED:
        if now >= row["ends_at"]:
            return ENDED
        return SCHEDULED if now < row["starts_at"] else ACTIVE
    return status


def request_json(row: Any, now: datetime, *, approvals: int | None = None) -> dict[str, Any]:
    """Return the JSON form of a request row (PIM_REQUEST_GET or PIM_REQUESTS_VISIBLE)."""
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "role": row["role"],
        "requester": row["requester"],
        "status": row["status"],
        "state": request_state(row, now),
        "duration_seconds": row["duration_seconds"],
        "justification": row["justification"],
        "ticket": row["ticket"],
        "requested_start": iso(row["requested_start"]),
        "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]),
        "age_seconds": max(0, int((now - row["created_at"]).total_seconds())),
        "approvals_required": row["approvals_required"],
        "grant": None,
    }
    if approvals is not None:
        body["approvals"] = approvals
    if row["starts_at"] is not None:
        body["grant"] = {
            "starts_at": iso(row["starts_at"]),
            "ends_at": iso(row["ends_at"]),
            "ended_at": iso(row["ended_at"]),
            "end_reason": row["end_reason"],
            "ended_by": row["ended_by"],
        }
    return body
