"""The {kubernetes} blocks: each kubectl command parses, and each named object exists.

The blocks never run (there is no cluster here). Instead, each `kubectl`
command line runs with `--help` on the pinned kubectl, which fails on an
unknown flag, and its usage line must be a leaf command (not a group that
wants a subcommand). Workloads named as KIND/NAME or by `get|describe KIND
NAME`, pods of a StatefulSet, and `-k` folders must exist in the rendered
manifests of deploy/kubernetes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import KUBERNETES_DIR, REPO_ROOT, render, tool_path
from tests.runbooks.runbook_parser import Block, commands_named, parse_runbook, runbook_paths

KINDS = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "job": "Job",
    "gateway": "Gateway",
    "service": "Service",
    "namespace": "Namespace",
    "networkpolicy": "NetworkPolicy",
}
OVERLAYS = (
    "overlays/simple",
    "overlays/split",
    "overlays/simple/migrate",
    "overlays/split/migrate",
)


def kubectl_lines() -> list[tuple[Block, list[str]]]:
    found: list[tuple[Block, list[str]]] = []
    for path in runbook_paths():
        blocks = [b for b in parse_runbook(path) if b.kind == "kubernetes"]
        found.extend(commands_named(blocks, "kubectl"))
    return found


@pytest.fixture(scope="module")
def rendered_objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("runbook-rendered")
    objects: list[dict[str, Any]] = []
    for overlay in OVERLAYS:
        objects.extend(
            render(KUBERNETES_DIR / overlay, folder / f"{overlay.replace('/', '-')}.yaml").objects
        )
    return objects


def _namespace(words: list[str]) -> str | None:
    for index, word in enumerate(words):
        if word in ("-n", "--namespace") and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--namespace="):
            return word.partition("=")[2]
    return None


def _exists(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None) -> bool:
    return any(
        obj["kind"] == kind
        and obj["metadata"]["name"] == name
        and (namespace is None or obj["metadata"].get("namespace", namespace) == namespace)
        for obj in objects
    )


def _references(words: list[str]) -> list[tuple[str, str]]:
    """(Kind, name) pairs a command names, as KIND/NAME or `VERB KIND NAME`."""
    found = []
    positional = [w for w in words if not w.startswith("-")]
    for word in positional:
        kind, slash, name = word.partition("/")
        if slash and kind in KINDS:
            found.append((KINDS[kind], name))
    for verb in ("get", "describe"):
        if verb in positional:
            at = positional.index(verb)
            if at + 2 < len(positional) and positional[at + 1] in KINDS:
                found.append((KINDS[positional[at + 1]], positional[at + 2]))
    return found


def _strip_flag_values(words: list[str]) -> list[str]:
    """Drop the flags that take a separate value (-n, -o, --selector ...) with their values."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in (
            "-n",
            "--namespace",
            "-o",
            "--output",
            "--selector",
            "-l",
            "--tail",
            "--timeout",
        ):
            skip = True
            continue
        out.append(word)
    return out


def test_runbooks_have_kubernetes_commands() -> None:
    assert len(kubectl_lines()) >= 8


def kubectl_problems(lines: list[tuple[Block, list[str]]], kubectl: Path) -> list[str]:
    problems = []
    for block, words in lines:
        args = [re.sub(r"\$\{?\w+\}?", "x", word) for word in words]
        result = subprocess.run(
            [str(kubectl), *args, "--help"], capture_output=True, text=True, timeout=30, check=False
        )
        usage = result.stdout.partition("Usage:")[2].strip().splitlines()[:1]
        if result.returncode != 0:
            problems.append(f"{block.where}: kubectl {' '.join(words)}: {result.stderr.strip()}")
        elif not usage or "[command]" in usage[0] or "SUBCOMMAND" in usage[0]:
            problems.append(f"{block.where}: kubectl {' '.join(words)}: not a complete command")
    return problems


def object_problems(
    lines: list[tuple[Block, list[str]]], rendered_objects: list[dict[str, Any]]
) -> list[str]:
    problems = []
    for block, words in lines:
        namespace = _namespace(words)
        if namespace is not None and "$" in namespace:
            namespace = None
        for kind, name in _references(_strip_flag_values(words)):
            if not _exists(rendered_objects, kind, name, namespace):
                problems.append(f"{block.where}: no {kind} {namespace}/{name} in deploy/kubernetes")
        positional = [w for w in _strip_flag_values(words) if not w.startswith("-")]
        if positional[:2] == ["delete", "pod"] and len(positional) > 2:
            set_name, _, ordinal = positional[2].rpartition("-")
            if not ordinal.isdigit() or not _exists(
                rendered_objects, "StatefulSet", set_name, namespace
            ):
                problems.append(f"{block.where}: pod {positional[2]} is not a StatefulSet pod")
        if "-k" in words:
            folder = words[words.index("-k") + 1]
            if not (REPO_ROOT / folder / "kustomization.yaml").is_file():
                problems.append(f"{block.where}: {folder} is not a kustomization")
        kustomize_folder = words[1] if words[:1] == ["kustomize"] and len(words) > 1 else None
        if kustomize_folder and not (REPO_ROOT / kustomize_folder / "kustomization.yaml").is_file():
            problems.append(f"{block.where}: {words[1]} is not a kustomization")
    return problems


def test_kubectl_commands_parse() -> None:
    assert kubectl_problems(kubectl_lines(), tool_path("kubectl")) == []


def test_kubectl_objects_exist(rendered_objects: list[dict[str, Any]]) -> None:
    assert object_problems(kubectl_lines(), rendered_objects) == []


def _synthetic(line: str) -> list[tuple[Block, list[str]]]:
    block = Block(Path("synthetic.md"), 1, "kubernetes", line)
    return commands_named([block], "kubectl")


@pytest.mark.parametrize(
    "line",
    [
        "kubectl -n appliance-auth rollout undo deployment/appliance --to-revison=3",
        "kubectl -n appliance-auth rollout undoo deployment/appliance",
    ],
)
def test_kubectl_checker_rejects_bad_command(line: str) -> None:
    assert len(kubectl_problems(_synthetic(line), tool_path("kubectl"))) == 1


@pytest.mark.parametrize(
    "line",
    [
        "kubectl -n appliance-auth rollout undo statefulset/appliance",
        "kubectl -n appliance-pims rollout undo deployment/appliance",
        "kubectl -n appliance-breakglass delete pod appliance-x",
        "kubectl apply -k deploy/kubernetes/overlays/nowhere",
    ],
)
def test_object_checker_rejects_unknown_object(
    line: str, rendered_objects: list[dict[str, Any]]
) -> None:
    assert len(object_problems(_synthetic(line), rendered_objects)) == 1


def test_reference_checker_finds_names() -> None:
    words = ["-n", "appliance-auth", "rollout", "undo", "deployment/appliance"]
    assert _references(_strip_flag_values(words)) == [("Deployment", "appliance")]
    assert _references(["get", "gateway", "appliance"]) == [("Gateway", "appliance")]
