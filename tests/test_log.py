"""JSON-lines logging and the repeat limiter."""

from __future__ import annotations

import io
import json
import logging

from appliance.log import JsonFormatter, RepeatLimiter, log_fields


def test_limiter_counts_suppressed_records() -> None:
    limiter = RepeatLimiter(limit=2, window_seconds=1.0)
    assert limiter.allow(now=100.0) == (True, 0)
    assert limiter.allow(now=100.1) == (True, 0)
    assert limiter.allow(now=100.2) == (False, 0)
    assert limiter.allow(now=100.3) == (False, 0)
    assert limiter.allow(now=101.5) == (True, 2)
    assert limiter.allow(now=101.6) == (True, 0)


def test_formatter_writes_one_json_object() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("appliance.test-log")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("retrying", extra=log_fields(attempt=2, plane="pim"))
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "retrying"
    assert entry["attempt"] == 2
    assert entry["plane"] == "pim"
    assert entry["level"] == "warning"
