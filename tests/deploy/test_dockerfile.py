"""The Dockerfile, checked without a Docker engine: a multi-stage build whose
run-time stage has no shell, runs as a non-root numeric UID, checks its own
health, starts `appliance serve` and carries no secret."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from tests.deploy.deploy_support import DEPLOY_DIR, REPO_ROOT, run_tool, tool_path

DOCKERFILE = DEPLOY_DIR / "Dockerfile"
DOCKERIGNORE = DEPLOY_DIR / "Dockerfile.dockerignore"
MIN_UID = 10000
RUNTIME_PYTHON = "3.11"
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|DATABASE_URL|DSN|API_KEY", re.IGNORECASE
)
SECRET_FILE = re.compile(r"(^|/)(\.env|id_rsa|id_ed25519|.*\.pem|.*\.key|.*\.p12|\.git)$")


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions, joining continued lines
    and dropping comments, as BuildKit does for the default escape character."""
    stages: list[Stage] = []
    logical: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not logical:
            start = number
        if stripped.startswith("#") or (not stripped and not logical):
            continue
        if stripped.endswith("\\"):
            logical.append(stripped[:-1].strip())
            continue
        logical.append(stripped)
        keyword, _, arguments = " ".join(part for part in logical if part).partition(" ")
        logical = []
        instruction = Instruction(keyword.upper(), arguments.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(instruction: Instruction) -> list[str]:
    """Parse the JSON array of an exec-form instruction, failing on shell form."""
    arguments = instruction.arguments
    if instruction.keyword == "HEALTHCHECK":
        arguments = arguments[arguments.index("CMD") + len("CMD") :].strip()
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        pytest.fail(
            f"line {instruction.line}: {instruction.keyword} is in shell form; use a JSON array",
            pytrace=False,
        )
    assert isinstance(value, list)
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_build_has_separate_build_and_runtime_stages(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].name == "build"
    for stage in stages:
        image, _, tag = stage.base.rpartition(":")
        assert image, f"base image {stage.base} has no tag"
        assert tag not in ("", "latest"), f"base image {stage.base} has no fixed tag"


def test_runtime_stage_has_no_shell(runtime: Stage) -> None:
    assert runtime.base.startswith("gcr.io/distroless/"), runtime.base
    assert runtime.all("RUN") == [], "RUN needs a shell, which the run-time image lacks"
    for instruction in runtime.all("COPY"):
        assert instruction.arguments.startswith("--from=build"), (
            f"line {instruction.line} copies from the build context"
        )


def test_runtime_user_is_numeric_and_unprivileged(runtime: Stage) -> None:
    users = runtime.all("USER")

    assert users, "the run-time stage sets no USER"
    uid, _, gid = users[-1].arguments.partition(":")
    assert uid.isdigit(), f"USER {users[-1].arguments}: runAsNonRoot cannot verify a user name"
    assert int(uid) >= MIN_UID
    assert gid.isdigit()
    assert int(gid) >= MIN_UID


def test_healthcheck_requests_healthz(runtime: Stage) -> None:
    (healthcheck,) = runtime.all("HEALTHCHECK")
    command = exec_form(healthcheck)

    assert command[0].startswith("/opt/appliance/bin/python")
    assert "/healthz" in command[-1]
    assert "--timeout=" in healthcheck.arguments


def test_entrypoint_serves_the_appliance(runtime: Stage) -> None:
    (entrypoint,) = runtime.all("ENTRYPOINT")
    (command,) = runtime.all("CMD")

    assert exec_form(entrypoint) == ["/opt/appliance/bin/appliance"]
    assert exec_form(command)[:2] == ["serve", "--plane"]


def test_runtime_environment_fits_the_manifests(runtime: Stage) -> None:
    environment = " ".join(item.arguments for item in runtime.all("ENV"))
    settings = dict(re.findall(r"(\w+)=(\S+)", environment))

    assert settings["APPLIANCE_HOST"] == "0.0.0.0"  # noqa: S104
    assert settings["APPLIANCE_PORT"] == "8080"
    assert settings["PYTHONDONTWRITEBYTECODE"] == "1", (
        "a read-only root filesystem cannot take __pycache__"
    )
    assert [item.arguments for item in runtime.all("EXPOSE")] == ["8080"]
    assert json.loads(runtime.all("VOLUME")[0].arguments) == [settings["APPLIANCE_DATA_DIR"]]


def test_no_secret_is_baked_in(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.all("ENV") + stage.all("ARG"):
            for name, _value in re.findall(r"(\w+)=(\S*)", instruction.arguments):
                assert not SECRET_NAME.search(name), (
                    f"line {instruction.line} sets {name} in the image"
                )
        for instruction in stage.all("ADD"):
            pytest.fail(
                f"line {instruction.line}: use COPY; ADD fetches URLs and unpacks archives",
                pytrace=False,
            )
        for instruction in stage.all("COPY"):
            sources = [word for word in instruction.arguments.split() if not word.startswith("--")][
                :-1
            ]
            for source in sources:
                assert not SECRET_FILE.search(source.rstrip("/")), (
                    f"line {instruction.line} copies {source}"
                )


def test_build_context_holds_only_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    included = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied = {
        word.rstrip("/")
        for instruction in stages[0].all("COPY")
        for word in instruction.arguments.split()[:-1]
        if not word.startswith("--")
    }

    assert patterns[0] == "*", "the ignore file must exclude everything first"
    assert included == copied
    for source in copied:
        assert (REPO_ROOT / source).exists(), (
            f"the build copies {source}, which is missing from the repository"
        )


def test_package_fits_the_runtime_python() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert RUNTIME_PYTHON in SpecifierSet(project["requires-python"])
    assert "appliance" in project["scripts"], "the ENTRYPOINT runs the `appliance` console script"


def test_hadolint_finds_nothing() -> None:
    hadolint = tool_path("hadolint")

    result = run_tool([hadolint, "--no-color", DOCKERFILE])

    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


def test_broken_dockerfile_fails_hadolint(tmp_path: Path) -> None:
    hadolint = tool_path("hadolint")
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        "FROM debian\nRUN apt-get install curl\nCMD curl localhost\n", encoding="utf-8"
    )

    result = run_tool([hadolint, "--no-color", broken])

    assert result.returncode != 0
    for code in ("DL3006", "DL3008", "DL3025"):
        assert code in result.stdout, result.stdout


def test_parser_joins_continued_lines() -> None:
    stages = parse_dockerfile(
        "FROM a:1 AS build\nRUN one \\\n    # a comment\n    two\nFROM b:2\nUSER 1:1\n"
    )

    assert [stage.name for stage in stages] == ["build", None]
    assert stages[0].instructions[0].arguments == "one two"
    assert stages[1].all("USER")[0].line == 6
