"""JSON-lines logging with a per-request id.

Every record is one JSON object on one line: `ts`, `level`, `logger`, `msg`,
the request id when there is one, and the fields passed in `extra={"fields":
{...}}`. Callers pass identifiers and outcomes, never a secret: the formatter
cannot tell a passphrase from a name, so the rule is kept at the call sites
and checked by the tests that read the captured log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: str = "info", stream: Any = None) -> None:
    """Route every logger to one JSON-lines handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Hypercorn's access log would print full request lines, which can carry
    # query-string secrets such as authorization codes; ours logs paths only.
    logging.getLogger("hypercorn.access").disabled = True


def log_fields(**fields: Any) -> dict[str, Any]:
    """Build the `extra` argument that carries structured fields into a record."""
    return {"fields": fields}


class RepeatLimiter:
    """Let at most `limit` log records through per `window_seconds`; count the rest.

    For records an attacker can trigger at request rate (failed client
    authentication, say), so a flood of bad requests cannot flood the log.
    The first record let through after a suppressed period reports how many
    were dropped.
    """

    def __init__(self, limit: int = 10, window_seconds: float = 1.0) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._window_start = 0.0
        self._count = 0
        self._suppressed = 0

    def allow(self, now: float | None = None) -> tuple[bool, int]:
        """Return whether to log this record, and how many were suppressed before it."""
        now = time.monotonic() if now is None else now
        if now - self._window_start >= self.window_seconds:
            self._window_start, self._count = now, 0
        self._count += 1
        if self._count > self.limit:
            self._suppressed += 1
            return False, 0
        suppressed, self._suppressed = self._suppressed, 0
        return True, suppressed
