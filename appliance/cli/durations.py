"""Parsing of durations such as `15m`, `1h`, `90s` or `900`."""

from __future__ import annotations

import re
from typing import Any

import click

UNITS = {"s": 1, "m": 60, "h": 3600}
PATTERN = re.compile(r"^(\d{1,6})([smh]?)$")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A click parameter that converts `15m` into 900 seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = PATTERN.match(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration: use e.g. 15m, 1h or 900s", param, ctx)
        return int(match.group(1)) * UNITS[match.group(2) or "s"]
