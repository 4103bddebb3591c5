"""Every `appliance ...` line of every runbook names commands and flags that exist.

Executed blocks would catch most drift, but {interactive}, {manual} and
{kubernetes} blocks never run: this test checks all of them against the click
command tree, so renaming a flag without updating the runbooks fails here.
"""

from __future__ import annotations

import click
import pytest

from appliance.cli.main import cli
from tests.runbooks.runbook_parser import (
    Block,
    commands_named,
    parse_runbook,
    runbook_paths,
    shell_commands,
)


def check_command_line(words: list[str]) -> list[str]:
    """Return the problems of `appliance WORDS` against the click tree (empty: fine)."""
    command: click.Command = cli
    path = ["appliance"]
    index = 0
    while isinstance(command, click.Group) and index < len(words):
        word = words[index]
        if word.startswith("-"):
            break
        sub = command.commands.get(word)
        if sub is None:
            return [f"`{' '.join(path)}` has no subcommand {word!r}"]
        command, index = sub, index + 1
        path.append(word)
    if isinstance(command, click.Group) and not any(w in ("-h", "--help") for w in words):
        return [f"`{' '.join(path)}` needs a subcommand"]
    options: dict[str, click.Option] = {}
    for param in command.get_params(click.Context(command)):
        if isinstance(param, click.Option):
            for name in [*param.opts, *param.secondary_opts]:
                options[name] = param
    problems: list[str] = []
    rest = words[index:]
    position = 0
    while position < len(rest):
        word = rest[position]
        position += 1
        if not word.startswith("-") or word == "-":
            continue
        name, has_value, value = word.partition("=")
        option = options.get(name)
        if option is None:
            problems.append(f"`{' '.join(path)}` has no option {name}")
            continue
        if option.is_flag or option.count:
            continue
        if not has_value:
            if position >= len(rest):
                problems.append(f"`{' '.join(path)} {name}` needs a value")
                continue
            value = rest[position]
            position += 1
        literal = "$" not in value and value != "SUBSTITUTED"
        if isinstance(option.type, click.Choice) and literal and value not in option.type.choices:
            problems.append(
                f"`{' '.join(path)} {name} {value}`: not one of {list(option.type.choices)}"
            )
    return problems


def appliance_lines() -> list[tuple[Block, list[str]]]:
    found: list[tuple[Block, list[str]]] = []
    for path in runbook_paths():
        found.extend(commands_named(parse_runbook(path), "appliance"))
    return found


def test_runbooks_exist() -> None:
    names = {path.stem for path in runbook_paths()}
    assert {
        "breakglass-activate",
        "pim-elevation",
        "breakglass-review",
        "database-outage",
        "signing-key-compromise",
        "kubernetes-rollback",
    } <= names


def test_runbook_blocks_are_marked() -> None:
    for path in runbook_paths():
        blocks = parse_runbook(path)
        assert any(block.kind == "run" for block in blocks) or path.stem.startswith("kubernetes"), (
            f"{path.name} has no {{run}} block"
        )


def test_runbook_appliance_commands_exist() -> None:
    lines = appliance_lines()
    assert len(lines) > 20
    problems = [
        f"{block.where}: {problem}"
        for block, words in lines
        for problem in check_command_line(words)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("appliance audit verify --data-dir x", None),
        ("appliance audit verfy", "has no subcommand 'verfy'"),
        ("appliance audit verify --data-directory x", "has no option --data-directory"),
        ("appliance keys rotate --plane nope --org demo", "not one of"),
        ("appliance pim", "needs a subcommand"),
        ('X=$(appliance demo totp --bogus) && echo "$X"', "has no option --bogus"),
        ("appliance admin keys list --session-file s.json | grep -c active", None),
    ],
)
def test_command_checker_catches_drift(line: str, problem: str | None) -> None:
    found = [
        issue
        for words in shell_commands(line)
        if words[0] == "appliance"
        for issue in check_command_line(words[1:])
    ]
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1
        assert problem in found[0]
