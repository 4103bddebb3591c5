"""Validate custom resources offline against the schemas in their CRD files.

Kubernetes checks a custom resource against the ``openAPIV3Schema`` of the
CustomResourceDefinition version it names. This tool does the same without a
cluster, for every object in the given YAML files whose API group has a CRD in
``--crds``. It is stricter than the API server in one way. Where a schema
lists ``properties`` and does not set ``x-kubernetes-preserve-unknown-fields``,
an unknown field is an error, because the API server would silently drop it:
a typo like ``clientCIRDs`` would quietly turn a policy off.

Not checked: CEL rules (``x-kubernetes-validations``), defaults, and string
formats. Objects of groups without a CRD (the core API) are listed as
``not_custom`` for another validator.

Run it with the interpreter of the validator environment, which has
jsonschema and PyYAML::

    .venv-deploy/bin/python deploy/tools/validate_custom_resources.py \\
        --crds ../shared/crds rendered.yaml

Exit status: 0 when every custom resource is valid, 1 when one is not or has
no CRD for its kind or version, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# libyaml's loader parses the 3 MB of CRDs several times faster than the
# pure-Python one.
YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# ObjectMeta fields a manifest may set. The CRD schemas describe metadata only
# as `type: object`, so without this list a misspelt `labels` would pass.
OBJECT_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "namespace": {"type": "string", "minLength": 1, "maxLength": 63},
        "generateName": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}


@dataclass(frozen=True)
class CrdVersion:
    """One served version of a CRD, with its schema made strict."""

    group: str
    kind: str
    version: str
    namespaced: bool
    schema: dict[str, Any]


@dataclass
class Report:
    """Results for every object read from the input files."""

    validated: list[dict[str, str]] = field(default_factory=list)
    not_custom: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {"validated": self.validated, "not_custom": self.not_custom, "errors": self.errors},
            indent=2,
        )


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of an OpenAPI v3 CRD schema that JSON Schema draft 4 can
    check and that rejects unknown fields."""
    result = copy.deepcopy(schema)
    _make_strict(result)
    return result


def _make_strict(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _make_strict(item)
        return
    if not isinstance(node, dict):
        return

    for key in ("properties", "patternProperties", "definitions"):
        for child in node.get(key, {}).values():
            _make_strict(child)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), (dict, list)):
            _make_strict(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for child in node.get(key, []):
            _make_strict(child)

    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]

    preserves_unknown = node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("x-kubernetes-embedded-resource"):
        # An embedded object carries its own apiVersion, kind and metadata.
        properties = node.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties.setdefault("metadata", {"type": "object"})
    if "properties" in node and "additionalProperties" not in node and not preserves_unknown:
        node["additionalProperties"] = False


def load_crds(crd_dir: Path) -> dict[tuple[str, str], dict[str, CrdVersion]]:
    """Read every CRD under crd_dir, keyed by (group, kind), then by version."""
    crds: dict[tuple[str, str], dict[str, CrdVersion]] = {}
    files = sorted(crd_dir.rglob("*.yaml")) + sorted(crd_dir.rglob("*.yml"))
    for path in files:
        with path.open(encoding="utf-8") as stream:
            documents = [doc for doc in yaml.load_all(stream, Loader=YamlLoader) if doc]
        for doc in documents:
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})["metadata"] = OBJECT_META_SCHEMA
                schema.setdefault("required", [])
                for name in ("apiVersion", "kind", "metadata"):
                    if name not in schema["required"]:
                        schema["required"].append(name)
                crds.setdefault((group, kind), {})[version["name"]] = CrdVersion(
                    group=group,
                    kind=kind,
                    version=version["name"],
                    namespaced=spec["scope"] == "Namespaced",
                    schema=schema,
                )
    return crds


def read_objects(paths: list[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in paths:
        with path.open(encoding="utf-8") as stream:
            for doc in yaml.load_all(stream, Loader=YamlLoader):
                if doc:
                    yield path, doc


def describe(path: Path, obj: dict[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    return {
        "file": str(path),
        "apiVersion": str(obj.get("apiVersion", "")),
        "kind": str(obj.get("kind", "")),
        "namespace": str(metadata.get("namespace", "")),
        "name": str(metadata.get("name", "")),
    }


def validate(paths: list[Path], crds: dict[tuple[str, str], dict[str, CrdVersion]]) -> Report:
    """Check every object in paths that belongs to a group with a CRD."""
    report = Report()
    crd_groups = {group for group, _ in crds}
    validators: dict[tuple[str, str, str], jsonschema.Draft4Validator] = {}

    for path, obj in read_objects(paths):
        identity = describe(path, obj)
        group, _, version = identity["apiVersion"].rpartition("/")
        if group not in crd_groups:
            report.not_custom.append(identity)
            continue

        versions = crds.get((group, identity["kind"]))
        if versions is None:
            report.errors.append(
                {
                    **identity,
                    "path": "kind",
                    "message": f"no CRD in group {group} defines this kind",
                }
            )
            continue
        crd = versions.get(version)
        if crd is None:
            served = ", ".join(sorted(versions))
            report.errors.append(
                {
                    **identity,
                    "path": "apiVersion",
                    "message": f"version {version} is not served; served: {served}",
                }
            )
            continue
        if crd.namespaced and not identity["namespace"]:
            report.errors.append(
                {
                    **identity,
                    "path": "metadata.namespace",
                    "message": "missing for a namespaced kind",
                }
            )
        if not crd.namespaced and identity["namespace"]:
            report.errors.append(
                {
                    **identity,
                    "path": "metadata.namespace",
                    "message": "set on a cluster-scoped kind",
                }
            )

        key = (crd.group, crd.kind, crd.version)
        if key not in validators:
            validators[key] = jsonschema.Draft4Validator(crd.schema)
        errors = sorted(
            validators[key].iter_errors(obj), key=lambda error: list(error.absolute_path)
        )
        for error in errors:
            location = ".".join(str(part) for part in error.absolute_path) or "(root)"
            report.errors.append({**identity, "path": location, "message": error.message})
        if not errors:
            report.validated.append(identity)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--crds", type=Path, required=True, help="folder of CRD YAML files, searched recursively"
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("files", type=Path, nargs="+", help="YAML files of rendered manifests")
    args = parser.parse_args(argv)

    if not args.crds.is_dir():
        parser.error(f"CRD folder not found: {args.crds}")
    crds = load_crds(args.crds)
    if not crds:
        parser.error(f"no CustomResourceDefinition found under {args.crds}")

    report = validate(args.files, crds)
    if args.json:
        print(report.to_json())
    else:
        for error in report.errors:
            print(
                f"ERROR {error['file']}: {error['kind']} {error['namespace']}/{error['name']}: "
                f"{error['path']}: {error['message']}"
            )
        print(f"{len(report.validated)} custom resources valid, {len(report.errors)} errors")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
