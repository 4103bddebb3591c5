"""Read the marked blocks of the runbooks and the commands inside them.

runbooks/README.md documents the markers. In short: a fenced block opens with
```sh {run}, {run exit=N} (or exit=N|M), {interactive}, {manual} or {kubernetes}; a ```text
{expect} block lists output that the run block before it must print; and an
HTML comment that opens with `<!-- runbook-test` holds shell lines that only
the test runs (to supply secrets or to break something on purpose).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_DIR = REPO_ROOT / "runbooks"

SHELL_KINDS = frozenset({"run", "interactive", "manual", "kubernetes", "test"})
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})

FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*(?:\{(?P<tags>[^}]*)\})?\s*$")
HIDDEN_OPEN = "<!-- runbook-test"
PLACEHOLDER = "<...>"


class RunbookFormatError(ValueError):
    """A runbook block is not marked the way runbooks/README.md describes."""


@dataclass
class Block:
    path: Path
    line: int
    kind: str  # run, interactive, manual, kubernetes, test (hidden), expect, text
    text: str
    expected_exits: tuple[int, ...] = (0,)
    expectations: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def runbook_paths() -> list[Path]:
    return sorted(path for path in RUNBOOK_DIR.glob("*.md") if path.name != "README.md")


def _parse_tags(tags: str, where: str) -> tuple[str, tuple[int, ...]]:
    words = tags.split()
    if not words:
        raise RunbookFormatError(f"{where}: empty {{}} marker")
    kind, options = words[0], words[1:]
    expected_exits = (0,)
    for option in options:
        name, _, value = option.partition("=")
        codes = value.split("|")
        if kind != "run" or name != "exit" or not all(code.isdigit() for code in codes):
            raise RunbookFormatError(f"{where}: unknown marker option {option!r}")
        expected_exits = tuple(int(code) for code in codes)
    return kind, expected_exits


def parse_runbook(path: Path) -> list[Block]:
    """Return the blocks of one runbook in document order, expectations attached."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        where = f"{path.name}:{index + 1}"
        if line.strip().startswith(HIDDEN_OPEN):
            end = index + 1
            while end < len(lines) and lines[end].strip() != "-->":
                end += 1
            if end == len(lines):
                raise RunbookFormatError(f"{where}: runbook-test comment is not closed by -->")
            blocks.append(Block(path, index + 1, "test", "\n".join(lines[index + 1 : end])))
            index = end + 1
            continue
        match = FENCE.match(line)
        if match is None or not line.startswith("```") or line.strip() == "```":
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise RunbookFormatError(f"{where}: code block is not closed")
        body = "\n".join(lines[index + 1 : end])
        lang, tags = match.group("lang"), match.group("tags")
        index = end + 1
        if tags is None:
            if lang in SHELL_LANGUAGES:
                raise RunbookFormatError(
                    f"{where}: shell block without a marker; add {{run}}, {{interactive}}, "
                    "{manual} or {kubernetes}"
                )
            blocks.append(Block(path, index, "text", body))
            continue
        kind, expected_exits = _parse_tags(tags, where)
        if kind == "expect":
            previous = [b for b in blocks if b.kind in ("run", "test")]
            if not previous or blocks[-1].kind not in ("run", "test", "text"):
                raise RunbookFormatError(f"{where}: {{expect}} must follow a {{run}} block")
            previous[-1].expectations.extend(x for x in body.splitlines() if x.strip())
            continue
        if kind not in SHELL_KINDS or kind == "test":
            raise RunbookFormatError(f"{where}: unknown marker {{{kind}}}")
        blocks.append(Block(path, index, kind, body, expected_exits=expected_exits))
    return blocks


def expectation_pattern(expected: str) -> re.Pattern[str]:
    """Compile one expected output line: literal text, `<...>` matches anything."""
    parts = [re.escape(part) for part in expected.strip().split(PLACEHOLDER)]
    return re.compile(".*".join(parts))


# -- commands inside shell text ---------------------------------------------

COMMAND_SEPARATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")", "{", "}", "!"})
REDIRECTIONS = frozenset({">", ">>", "<", "<<", "2>", "&>", "2>&1", "<<<"})
SHELL_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until"})


def _substitutions(text: str) -> tuple[str, list[str]]:
    """Cut every `$( ... )` out of text; return the rest and the inner scripts."""
    inner: list[str] = []
    out: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$(", index):
            depth, end = 1, index + 2
            while end < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            inner.append(text[index + 2 : end - 1])
            out.append("SUBSTITUTED")
            index = end
        else:
            out.append(text[index])
            index += 1
    return "".join(out), inner


def shell_commands(text: str) -> list[list[str]]:
    """Split shell text into simple commands (word lists), including those in `$(...)`.

    Good enough for the plain shell that runbooks contain: pipes, `&&`, `;`,
    `for` loops, redirections and command substitutions.
    """
    joined = re.sub(r"\\\n", " ", text)
    rest, inner_scripts = _substitutions(joined)
    commands: list[list[str]] = []
    for script in inner_scripts:
        commands.extend(shell_commands(script))
    for line in rest.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        skip_next = False
        for token in lexer:
            if skip_next:
                skip_next = False
                continue
            if token in COMMAND_SEPARATORS:
                if current:
                    commands.append(current)
                current = []
                continue
            if token in REDIRECTIONS or token.rstrip("0123456789") in (">", "<", ">&"):
                skip_next = True
                continue
            if not current and (token in SHELL_KEYWORDS or re.match(r"^\w+=", token)):
                continue
            current.append(token)
        if current:
            commands.append(current)
    return commands


def commands_named(blocks: list[Block], program: str) -> list[tuple[Block, list[str]]]:
    """Every simple command of a shell block whose program is `program`.

    `python -m PROGRAM` and `python3 -m PROGRAM` count as PROGRAM.
    """
    found: list[tuple[Block, list[str]]] = []
    for block in blocks:
        if block.kind not in SHELL_KINDS:
            continue
        for words in shell_commands(block.text):
            if words[:1] == [program]:
                found.append((block, words[1:]))
            elif words[:2] in (["python", "-m"], ["python3", "-m"]) and words[2:3] == [program]:
                found.append((block, words[3:]))
    return found
