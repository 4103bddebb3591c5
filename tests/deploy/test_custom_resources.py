"""Gateway API and Envoy Gateway objects validate against the schemas of their
CRDs, with unknown fields rejected (deploy/tools/validate_custom_resources.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import (
    DEPLOY_DIR,
    Rendered,
    crds_dir,
    edited,
    find,
    run_tool,
    tool_path,
    write_objects,
)

VALIDATOR = DEPLOY_DIR / "tools" / "validate_custom_resources.py"
CUSTOM_GROUPS = ("gateway.networking.k8s.io", "gateway.envoyproxy.io")


def validate(crd_folder: Path, files: list[Path]) -> tuple[int, dict[str, Any]]:
    """Run the validator with the validator environment's Python and return its
    exit status and JSON report."""
    python = tool_path("python")
    result = run_tool([python, VALIDATOR, "--crds", crd_folder, "--json", *files])
    if result.returncode not in (0, 1):
        pytest.fail(
            f"{VALIDATOR.name} exited with {result.returncode}:\n{result.stderr}", pytrace=False
        )
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def report(crd_folder: Path, rendered: dict[str, Rendered]) -> tuple[int, dict[str, Any]]:
    return validate(crd_folder, [item.path for item in rendered.values()])


def test_custom_resources_match_their_crds(report: tuple[int, dict[str, Any]]) -> None:
    returncode, result = report

    assert result["errors"] == []
    assert returncode == 0


def test_every_custom_resource_was_checked(
    report: tuple[int, dict[str, Any]], rendered: dict[str, Rendered]
) -> None:
    _, result = report
    custom = [
        (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        for item in rendered.values()
        for obj in item.objects
        if obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS
    ]
    checked = [(entry["kind"], entry["namespace"], entry["name"]) for entry in result["validated"]]

    assert custom, "the manifests contain no custom resources"
    assert sorted(checked) == sorted(custom)
    assert {entry["apiVersion"].split("/")[0] for entry in result["not_custom"]}.isdisjoint(
        CUSTOM_GROUPS
    )


def test_misspelt_security_policy_field_fails(
    crd_folder: Path, rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    objects = edited(rendered["split"].objects)
    policy = find(objects, "SecurityPolicy", "admin-vpn-only", "appliance-admin")
    principal = policy["spec"]["authorization"]["rules"][0]["principal"]
    principal["clientCIRDs"] = principal.pop("clientCIDRs")

    returncode, result = validate(crd_folder, [write_objects(objects, tmp_path / "broken.yaml")])

    assert returncode == 1
    assert [(e["kind"], e["name"]) for e in result["errors"]] == [
        ("SecurityPolicy", "admin-vpn-only")
    ]
    assert "clientCIRDs" in result["errors"][0]["message"]


def test_invalid_enum_value_fails(
    crd_folder: Path, rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    objects = edited(rendered["split"].objects)
    policy = find(objects, "SecurityPolicy", "pim-vpn-only", "appliance-pim")
    policy["spec"]["authorization"]["defaultAction"] = "Reject"

    returncode, result = validate(crd_folder, [write_objects(objects, tmp_path / "broken.yaml")])

    assert returncode == 1
    assert [e["path"] for e in result["errors"]] == ["spec.authorization.defaultAction"]


def test_unserved_version_and_unknown_kind_fail(
    crd_folder: Path, rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    objects = edited(rendered["simple"].objects)
    find(objects, "HTTPRoute", "auth", "appliance")["apiVersion"] = (
        "gateway.networking.k8s.io/v1alpha9"
    )
    objects.append(
        {
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "EnvoyPatchPolicy",
            "metadata": {"name": "x", "namespace": "appliance"},
        }
    )

    returncode, result = validate(crd_folder, [write_objects(objects, tmp_path / "broken.yaml")])

    assert returncode == 1
    assert sorted((e["kind"], e["path"]) for e in result["errors"]) == [
        ("EnvoyPatchPolicy", "kind"),
        ("HTTPRoute", "apiVersion"),
    ]


def test_misspelt_metadata_field_fails(
    crd_folder: Path, rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    objects = edited(rendered["simple"].objects)
    gateway = find(objects, "Gateway", "appliance", "appliance")
    gateway["metadata"]["label"] = gateway["metadata"].pop("labels")

    returncode, result = validate(crd_folder, [write_objects(objects, tmp_path / "broken.yaml")])

    assert returncode == 1
    assert [(e["kind"], e["path"]) for e in result["errors"]] == [("Gateway", "metadata")]


def test_missing_crd_folder_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPLIANCE_CRDS_DIR", str(tmp_path / "absent"))

    with pytest.raises(pytest.fail.Exception, match="CRD folder not found"):
        crds_dir()
