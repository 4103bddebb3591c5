"""Core Kubernetes objects validate offline with kubernetes-validate --strict
against several Kubernetes releases; it has no schema for custom resources,
which test_custom_resources.py checks instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.deploy_support import (
    KUBERNETES_VERSIONS,
    Rendered,
    edited,
    find,
    run_tool,
    tool_path,
    write_objects,
)

# The only kinds without a built-in schema: Gateway API and Envoy Gateway
# custom resources.
CUSTOM_KINDS = {
    "Gateway",
    "GatewayClass",
    "HTTPRoute",
    "SecurityPolicy",
    "ClientTrafficPolicy",
    "BackendTrafficPolicy",
    "EnvoyProxy",
}
NO_SCHEMA = re.compile(r"^WARN .* Couldn't find schema for kind (\w+) with api version (\S+)")


def validate(files: list[Path]) -> tuple[int, list[str], set[str]]:
    """Run kubernetes-validate --strict on files for every supported release and
    return its exit status, its ERROR lines and the kinds it found no schema for."""
    validator = tool_path("kubernetes-validate")
    args: list[str | Path] = [validator, "--strict", "--quiet"]
    for version in KUBERNETES_VERSIONS:
        args += ["--kubernetes-version", version]
    result = run_tool([*args, *files])
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    errors = [line for line in lines if line.startswith(("ERROR", "FATAL"))]
    no_schema = {match.group(1) for line in lines if (match := NO_SCHEMA.match(line))}
    return result.returncode, errors, no_schema


@pytest.fixture(scope="module")
def validation(rendered: dict[str, Rendered]) -> tuple[int, list[str], set[str]]:
    return validate([item.path for item in rendered.values()])


def test_core_objects_are_valid(validation: tuple[int, list[str], set[str]]) -> None:
    returncode, errors, _ = validation

    assert errors == []
    assert returncode == 0


def test_only_custom_kinds_lack_a_schema(validation: tuple[int, list[str], set[str]]) -> None:
    _, _, no_schema = validation

    assert no_schema <= CUSTOM_KINDS, f"no schema for {sorted(no_schema - CUSTOM_KINDS)}"


def test_misspelt_core_field_fails(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    objects = edited(rendered["split"].objects)
    deployment = find(objects, "Deployment", "appliance", "appliance-auth")
    context = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")

    returncode, errors, _ = validate([write_objects(objects, tmp_path / "broken.yaml")])

    assert returncode != 0
    assert any("readOnlyRootFileSystem" in line for line in errors), errors


def test_unknown_kind_is_reported(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    objects = edited(rendered["simple"].objects)
    objects.append(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "x", "namespace": "appliance"},
        }
    )

    _, _, no_schema = validate([write_objects(objects, tmp_path / "unknown.yaml")])

    assert no_schema - CUSTOM_KINDS == {"Widget"}
