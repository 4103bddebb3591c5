"""Locate the offline validators, render the kustomizations and run the tools.

The validators live in their own virtual environment (created by
deploy/install-validators.sh) so that their dependency trees stay out of the
application's. A missing tool or CRD folder fails the test that needs it with
the command that fixes it; nothing here skips.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
KUBERNETES_DIR = DEPLOY_DIR / "kubernetes"
INSTALL_COMMAND = "bash deploy/install-validators.sh"

# Every kustomization that a platform team applies, by a short name.
KUSTOMIZATIONS = {
    "simple": "overlays/simple",
    "simple-migrate": "overlays/simple/migrate",
    "split": "overlays/split",
    "split-migrate": "overlays/split/migrate",
}

# kubernetes-validate checks the core kinds against these Kubernetes releases:
# the oldest and newest that the manifests support, and one between.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")

# Without this, checkov queries PyPI for a newer version of itself on each run.
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}

# A tool that hangs must fail the test, not the whole CI run.
TOOL_TIMEOUT_SECONDS = 300


def validator_venv() -> Path:
    """Return the validator environment: $APPLIANCE_DEPLOY_VENV or REPO/.venv-deploy."""
    override = os.environ.get("APPLIANCE_DEPLOY_VENV")
    return Path(override) if override else REPO_ROOT / ".venv-deploy"


def tool_path(name: str, venv: Path | None = None) -> Path:
    """Return the path of a validator executable, or fail the test with the fix."""
    venv = validator_venv() if venv is None else venv
    path = venv / "bin" / name
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"validator {name!r} not found at {path}. Install the pinned validators with "
            f"`{INSTALL_COMMAND}` from the repository root (set APPLIANCE_DEPLOY_VENV to use "
            "another environment).",
            pytrace=False,
        )
    return path


def crds_dir() -> Path:
    """Return the CRD folder: $APPLIANCE_CRDS_DIR or shared/crds beside the repository."""
    override = os.environ.get("APPLIANCE_CRDS_DIR")
    path = Path(override) if override else REPO_ROOT.parent / "shared" / "crds"
    if not path.is_dir() or not any(path.rglob("*.yaml")):
        pytest.fail(
            f"CRD folder not found or empty: {path}. The Gateway API and Envoy Gateway objects "
            "cannot be validated without it. Put the shared/ folder beside the repository "
            "(it holds crds/gateway-api-v1.6.1 and crds/envoy-gateway-v1.9.0), or set "
            "APPLIANCE_CRDS_DIR to a folder of CRD YAML files.",
            pytrace=False,
        )
    return path


def run_tool(
    args: list[str | Path], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a validator and capture its output; the caller checks the exit status."""
    return subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        env={**os.environ, **(env or {})},
        check=False,
    )


@dataclass(frozen=True)
class Rendered:
    """The output of one kustomization, as a file and as parsed objects."""

    name: str
    path: Path
    objects: list[dict[str, Any]]


def render(kustomization: Path, output: Path) -> Rendered:
    """Render a kustomization with the pinned kubectl and write the YAML to output."""
    kubectl = tool_path("kubectl")
    result = run_tool([kubectl, "kustomize", kustomization])
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {kustomization} failed:\n{result.stderr}", pytrace=False)
    output.write_text(result.stdout, encoding="utf-8")
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(name=output.stem, path=output, objects=objects)


def write_objects(objects: Iterable[dict[str, Any]], output: Path) -> Path:
    """Write objects as one multi-document YAML file, as kustomize would."""
    output.write_text(yaml.safe_dump_all(list(objects), sort_keys=False), encoding="utf-8")
    return output


def find(
    objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None
) -> dict[str, Any]:
    """Return the one object of that kind and name (and namespace, when given)."""
    matches = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and obj["metadata"]["name"] == name
        and (namespace is None or obj["metadata"].get("namespace") == namespace)
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
    return matches[0]


def edited(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a deep copy that a test can break without touching the session's objects."""
    return copy.deepcopy(objects)


def container(workload: dict[str, Any], name: str = "appliance") -> dict[str, Any]:
    """Return the named container of a workload's pod template."""
    for item in workload["spec"]["template"]["spec"]["containers"]:
        if item["name"] == name:
            return item
    raise AssertionError(
        f"{workload['kind']} {workload['metadata']['name']} has no container {name!r}"
    )


def run_checkov(files: list[Path], frameworks: str = "kubernetes") -> list[dict[str, Any]]:
    """Run checkov offline on files and return its per-framework JSON reports."""
    checkov = tool_path("checkov")
    args: list[str | Path] = [
        checkov,
        "--skip-download",
        "--framework",
        *frameworks.split(","),
        "--output",
        "json",
    ]
    for path in files:
        args += ["--file", path]
    result = run_tool(args, env=CHECKOV_ENV)
    # Exit status 1 means failed checks, which the tests inspect; anything
    # else means checkov itself failed.
    if result.returncode not in (0, 1):
        pytest.fail(
            f"checkov exited with {result.returncode}:\n{result.stderr[-4000:]}", pytrace=False
        )
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]
