"""The runbook block markers and the expected-output patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runbooks.runbook_parser import (
    RunbookFormatError,
    expectation_pattern,
    parse_runbook,
    shell_commands,
)
from tests.runbooks.runner import split_segments


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sample.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_blocks_parsed_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "```sh {run}\necho hi\n```\n\n```text {expect}\nhi\n```\n"
        "<!-- runbook-test\nX=1\n@stop-postgres\n-->\n"
        "```sh {run exit=0|1}\nfalse\n```\n```sh {kubernetes}\nkubectl get pods\n```\n",
    )

    blocks = parse_runbook(path)

    assert [b.kind for b in blocks] == ["run", "test", "run", "kubernetes"]
    assert blocks[0].expectations == ["hi"]
    assert blocks[2].expected_exits == (0, 1)


def test_unmarked_shell_block_rejected(tmp_path: Path) -> None:
    with pytest.raises(RunbookFormatError, match="without a marker"):
        parse_runbook(write(tmp_path, "```sh\nappliance doctor\n```\n"))


def test_unknown_marker_rejected(tmp_path: Path) -> None:
    with pytest.raises(RunbookFormatError, match="unknown marker"):
        parse_runbook(write(tmp_path, "```sh {runn}\nappliance doctor\n```\n"))


def test_expect_without_run_rejected(tmp_path: Path) -> None:
    with pytest.raises(RunbookFormatError, match="must follow"):
        parse_runbook(write(tmp_path, "```text {expect}\nhi\n```\n"))


def test_directive_splits_segments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "```sh {run}\na\n```\n<!-- runbook-test\nb\n@restart-appliance\n-->\n```sh {run}\nc\n```\n",
    )

    segments = split_segments(parse_runbook(path))

    assert [s.action for s in segments] == ["@restart-appliance", None]
    assert [b.text for b in segments[0].blocks] == ["a", "b"]
    assert [b.text for b in segments[1].blocks] == ["c"]


def test_placeholder_matches_any_text() -> None:
    pattern = expectation_pattern("expires: <...> UTC (in 15 min)")

    assert pattern.search("expires: 2026-12-04 21:55:48 UTC (in 15 min)")
    assert not pattern.search("expires: 2026-12-04 21:55:48 UTC (in 14 min)")


def test_shell_commands_split_pipes_and_substitutions() -> None:
    commands = shell_commands(
        'printf x | appliance breakglass activate --totp "$(appliance demo totp)" \\\n'
        "    --passphrase-stdin > out.txt && echo done"
    )

    assert ["appliance", "demo", "totp"] in commands
    assert [
        "appliance",
        "breakglass",
        "activate",
        "--totp",
        "SUBSTITUTED",
        "--passphrase-stdin",
    ] in (commands)
