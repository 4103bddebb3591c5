"""Input checks of `appliance incident close`, which run before any database access."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliance.cli.main import cli


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--summary", "   ", "must not be empty"),
        ("--actor", "", "must not be empty"),
        ("--summary", "x" * 2001, "at most 2000 characters"),
    ],
)
def test_incident_close_rejects_bad_input(option: str, value: str, message: str) -> None:
    args = {"--org": "demo", "--incident": "INC-1", "--actor": "me", "--summary": "done"}
    args[option] = value
    argv = ["incident", "close", "--database-url", "postgresql://unused.invalid/x"]
    for name, given in args.items():
        argv += [name, given]

    result = CliRunner().invoke(cli, argv)

    assert result.exit_code == 2
    assert message in result.output
    assert option in result.output
