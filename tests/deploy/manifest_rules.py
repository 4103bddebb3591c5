"""The appliance's own rules for its rendered Kubernetes manifests.

Schema validators check that each object is well formed; these rules check
what the design requires of the objects together: each plane isolated in its own
namespace behind its own Gateway, default-deny networking with egress only to
PostgreSQL and DNS, the restricted Pod Security Standard, each plane's
secrets mounted into that plane alone, and every reference between objects
resolving. Each rule returns a list of violations, empty when the manifests
follow it, so a test can show that a broken manifest breaks the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.deploy.manifest_model import (
    PLANES,
    POLICY_KINDS,
    Manifests,
    Violation,
    containers,
    pod_spec,
    ref,
    serve_planes,
)
from tests.deploy.rules_network import (
    check_default_deny,
    check_egress,
    check_gateway_isolation,
    check_ingress,
    check_route_exposure,
    check_vpn_allow_list,
    path_matches,
    route_matches,
)
from tests.deploy.rules_workloads import (
    check_autoscaling,
    check_disruption_budgets,
    check_plane_configuration,
    check_pod_security,
    check_probes_and_rollout,
    check_resources,
    check_secret_isolation,
    peak_connections,
)

# Names the tests import from here, next to the rules.
__all__ = [
    "ALL_RULES",
    "PLANES",
    "Manifests",
    "Violation",
    "check_all",
    "path_matches",
    "peak_connections",
    "route_matches",
    "serve_planes",
]


def check_references(manifests: Manifests) -> list[Violation]:
    """Every name that one object gives to another resolves within the manifests,
    except the Secrets, ConfigMaps and TLS certificates that the operator creates."""
    rule = "references"
    violations: list[Violation] = []

    def missing(source: dict[str, Any], kind: str, namespace: str | None, name: str) -> None:
        if manifests.get(kind, namespace, name) is None:
            where = f"{namespace}/{name}" if namespace else name
            violations.append(Violation(rule, ref(source), f"{kind} {where} not found"))

    for route in manifests.of_kind("HTTPRoute"):
        namespace = route["metadata"]["namespace"]
        for parent in route["spec"].get("parentRefs", []):
            gateway = manifests.get("Gateway", parent.get("namespace", namespace), parent["name"])
            if gateway is None:
                missing(route, "Gateway", parent.get("namespace", namespace), parent["name"])
            elif "sectionName" in parent and parent["sectionName"] not in {
                listener["name"] for listener in gateway["spec"]["listeners"]
            }:
                violations.append(
                    Violation(
                        rule,
                        ref(route),
                        f"listener {parent['sectionName']} not found on {ref(gateway)}",
                    )
                )
        for rule_ in route["spec"].get("rules", []):
            for backend in rule_.get("backendRefs", []):
                service = manifests.get(
                    "Service", backend.get("namespace", namespace), backend["name"]
                )
                if service is None:
                    missing(route, "Service", backend.get("namespace", namespace), backend["name"])
                elif backend.get("port") not in {port["port"] for port in service["spec"]["ports"]}:
                    violations.append(
                        Violation(
                            rule,
                            ref(route),
                            f"port {backend.get('port')} not found on {ref(service)}",
                        )
                    )

    for policy in manifests.of_kind(*POLICY_KINDS):
        for target in policy["spec"].get("targetRefs", []):
            missing(policy, target["kind"], policy["metadata"]["namespace"], target["name"])

    for gateway in manifests.of_kind("Gateway"):
        missing(gateway, "GatewayClass", None, gateway["spec"]["gatewayClassName"])
        parameters = gateway["spec"].get("infrastructure", {}).get("parametersRef")
        if parameters:
            missing(
                gateway, parameters["kind"], gateway["metadata"]["namespace"], parameters["name"]
            )

    for service in manifests.of_kind("Service"):
        selected = manifests.pods_matching(
            service["metadata"]["namespace"], {"matchLabels": service["spec"].get("selector", {})}
        )
        if not selected:
            violations.append(Violation(rule, ref(service), "selects no pods"))
        for workload in selected:
            port_names = {
                port.get("name") for item in containers(workload) for port in item.get("ports", [])
            }
            for port in service["spec"]["ports"]:
                if isinstance(port.get("targetPort"), str) and port["targetPort"] not in port_names:
                    violations.append(
                        Violation(
                            rule,
                            ref(service),
                            f"targetPort {port['targetPort']} not found on {ref(workload)}",
                        )
                    )

    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in manifests.of_kind(kind):
            selector = (
                obj["spec"].get("selector")
                if kind == "PodDisruptionBudget"
                else obj["spec"].get("podSelector")
            )
            if selector and not manifests.pods_matching(obj["metadata"]["namespace"], selector):
                violations.append(Violation(rule, ref(obj), "selects no pods"))

    for workload in manifests.workloads():
        namespace = workload["metadata"]["namespace"]
        spec = pod_spec(workload)
        missing(workload, "ServiceAccount", namespace, spec.get("serviceAccountName", "default"))
        account = manifests.get(
            "ServiceAccount", namespace, spec.get("serviceAccountName", "default")
        )
        if account is not None and account.get("automountServiceAccountToken") is not False:
            violations.append(
                Violation(rule, ref(account), "automountServiceAccountToken is not false")
            )
        volume_names = {volume["name"] for volume in spec.get("volumes", [])}
        volume_names |= {
            claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])
        }
        for item in containers(workload):
            for mount in item.get("volumeMounts", []):
                if mount["name"] not in volume_names:
                    violations.append(
                        Violation(rule, ref(workload), f"volumeMount {mount['name']} has no volume")
                    )
    for obj in manifests.objects:
        namespace = obj["metadata"].get("namespace")
        if namespace is not None and manifests.get("Namespace", None, namespace) is None:
            violations.append(Violation(rule, ref(obj), f"Namespace {namespace} not found"))

    for binding in manifests.of_kind("RoleBinding", "ClusterRoleBinding"):
        violations.append(
            Violation(rule, ref(binding), "the appliance calls no Kubernetes API and needs no RBAC")
        )
    return violations


ALL_RULES: tuple[Callable[[Manifests], list[Violation]], ...] = (
    check_pod_security,
    check_resources,
    check_probes_and_rollout,
    check_disruption_budgets,
    check_autoscaling,
    check_default_deny,
    check_egress,
    check_ingress,
    check_gateway_isolation,
    check_route_exposure,
    check_vpn_allow_list,
    check_secret_isolation,
    check_plane_configuration,
    check_references,
)


def check_all(objects: list[dict[str, Any]]) -> list[Violation]:
    """Apply every rule to the objects of one or more rendered kustomizations."""
    manifests = Manifests(objects)
    return [violation for rule in ALL_RULES for violation in rule(manifests)]
