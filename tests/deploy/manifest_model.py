"""Rendered manifests as a searchable model, and the facts the rules check them
against: the planes, their resource budget and their request paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PLANES = ("auth", "admin", "pim", "breakglass")

# Planes reachable only from the VPN allow-list.
VPN_ONLY_PLANES = ("admin", "pim", "breakglass")

# CPU request, memory request, memory limit per plane, from the design brief.
RESOURCE_BUDGET = {
    "auth": ("250m", "64Mi", "256Mi"),
    "admin": ("100m", "48Mi", "128Mi"),
    "pim": ("100m", "48Mi", "128Mi"),
    "breakglass": ("100m", "48Mi", "128Mi"),
}

# Request paths that each plane serves (one example per route of the plane's
# path contract), used to check which backend a Gateway sends them to.
PLANE_PATHS = {
    "auth": (
        "/o/acme/.well-known/openid-configuration",
        "/.well-known/openid-configuration/o/acme",
        "/.well-known/oauth-authorization-server/o/acme",
        "/o/acme/jwks.json",
        "/o/acme/authorize",
        "/o/acme/token",
        "/o/acme/introspect",
        "/o/acme/revoke",
        "/o/acme/userinfo",
        "/o/acme/logout",
        "/o/acme/login",
    ),
    "admin": (
        "/admin",
        "/admin/",
        "/admin/v1/orgs",
        "/admin/v1/orgs/acme/users",
        "/admin/openapi.json",
    ),
    "pim": (
        "/o/acme/pim/requests",
        "/o/acme/pim/status-lists/1",
        "/.well-known/jwt-vc-issuer/o/acme/pim",
    ),
    "breakglass": (
        "/o/acme/breakglass/activations",
        "/o/acme/breakglass/status-lists/1",
        "/.well-known/jwt-vc-issuer/o/acme/breakglass",
    ),
}

# Paths that no Gateway may route: health, readiness and metrics stay inside
# the cluster, and paths of no plane must not reach any backend.
UNROUTED_PATHS = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/o/acme",
    "/o/acme/",
    "/administrator",
    "/o/acme/pimx",
    "/o/acme/token/extra",
)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
POLICY_KINDS = ("SecurityPolicy", "ClientTrafficPolicy", "BackendTrafficPolicy")
ENVOY_NAMESPACE = "envoy-gateway-system"
OWNING_GATEWAY_NAME = "gateway.envoyproxy.io/owning-gateway-name"
OWNING_GATEWAY_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"
POSTGRES_PORT = 5432
DNS_PORT = 53
APP_PORT = 8080
MIN_RUN_AS_USER = 10000


@dataclass(frozen=True)
class Violation:
    """One broken rule on one object."""

    rule: str
    target: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.target}: {self.message}"


def ref(obj: dict[str, Any]) -> str:
    """Name an object as `Kind namespace/name` for messages."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return (
        f"{obj['kind']} {namespace}/{metadata['name']}"
        if namespace
        else f"{obj['kind']} {metadata['name']}"
    )


class Manifests:
    """Rendered objects with look-ups by kind, namespace and name."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] in kinds]

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for obj in self.objects:
            metadata = obj["metadata"]
            if (
                obj["kind"] == kind
                and metadata["name"] == name
                and metadata.get("namespace") == namespace
            ):
                return obj
        return None

    def workloads(self) -> list[dict[str, Any]]:
        return self.of_kind(*WORKLOAD_KINDS)

    def serving_workloads(self) -> list[dict[str, Any]]:
        """Return the workloads that run `appliance serve`."""
        return [obj for obj in self.workloads() if serve_planes(obj)]

    def pods_matching(
        self, namespace: str | None, selector: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Return the workloads in namespace whose pod labels match a label selector."""
        return [
            obj
            for obj in self.workloads()
            if obj["metadata"].get("namespace") == namespace
            and selector_matches(selector, pod_labels(obj))
        ]

    def namespaces_with_workloads(self) -> set[str]:
        return {obj["metadata"]["namespace"] for obj in self.workloads()}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    if workload["kind"] == "CronJob":
        template = workload["spec"]["jobTemplate"]["spec"]["template"]
    else:
        template = workload["spec"]["template"]
    return template.get("metadata", {}).get("labels", {})


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Evaluate a Kubernetes label selector (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values", []),
        )
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def serve_planes(workload: dict[str, Any]) -> tuple[str, ...]:
    """Return the planes that a workload serves, from `serve --plane NAME` in its args."""
    for item in pod_spec(workload)["containers"]:
        args = item.get("args", [])
        if not args or args[0] != "serve":
            continue
        for index, arg in enumerate(args):
            if arg == "--plane" and index + 1 < len(args):
                plane = args[index + 1]
                return PLANES if plane == "all" else (plane,)
            if arg.startswith("--plane="):
                plane = arg.split("=", 1)[1]
                return PLANES if plane == "all" else (plane,)
    return ()


def env_value(item: dict[str, Any], name: str) -> str | None:
    for entry in item.get("env", []):
        if entry["name"] == name:
            return entry.get("value")
    return None
