"""The appliance's own deployment rules hold for every rendered kustomization,
and each rule catches the broken manifest it exists for."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.deploy_support import KUSTOMIZATIONS, REPO_ROOT, Rendered, container, edited, find
from tests.deploy.manifest_rules import (
    ALL_RULES,
    PLANES,
    Manifests,
    Violation,
    check_all,
    path_matches,
    peak_connections,
    route_matches,
)

Objects = list[dict[str, Any]]


def rules_broken(objects: Objects) -> set[str]:
    return {violation.rule for violation in check_all(objects)}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.__name__)
@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_rule_holds(
    rule: Callable[[Manifests], list[Violation]], name: str, rendered: dict[str, Rendered]
) -> None:
    violations = rule(Manifests(rendered[name].objects))

    assert [str(v) for v in violations] == []


def connection_limits() -> dict[str, int]:
    """Read each plane role's CONNECTION LIMIT from the migration that sets it."""
    migration = REPO_ROOT / "appliance" / "db" / "migrations" / "0001_foundation.sql"
    match = re.search(
        r"plane_limits CONSTANT jsonb := '(\{.*?\})'", migration.read_text(encoding="utf-8")
    )
    assert match, (
        f"no plane_limits JSON found in {migration}; update this test to where the limits live"
    )
    limits = {plane: int(limit) for plane, limit in json.loads(match.group(1)).items()}
    assert set(limits) == set(PLANES)
    return limits


@pytest.mark.parametrize("topology", ["simple", "split"])
def test_pools_fit_connection_limits(topology: str, rendered: dict[str, Rendered]) -> None:
    """At the replica maximum plus rollout surge, no plane's pools can open more
    connections than its role's CONNECTION LIMIT."""
    limits = connection_limits()
    peak = peak_connections(Manifests(rendered[topology].objects))

    for plane in PLANES:
        assert 0 < peak[plane] <= limits[plane], (
            f"{plane}: {peak[plane]} connections at peak, limit {limits[plane]}"
        )


def test_pool_above_connection_limit_is_detected(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    env = container(find(objects, "Deployment", "appliance", "appliance-auth"))["env"]
    next(e for e in env if e["name"] == "APPLIANCE_AUTH_POOL_MAX")["value"] = "20"

    assert peak_connections(Manifests(objects))["auth"] > connection_limits()["auth"]


def test_path_match_types() -> None:
    assert path_matches({"path": {"type": "PathPrefix", "value": "/admin"}}, "/admin/v1")
    assert not path_matches({"path": {"type": "PathPrefix", "value": "/admin"}}, "/administrator")
    assert path_matches({"path": {"type": "Exact", "value": "/a"}}, "/a")
    assert not path_matches({"path": {"type": "Exact", "value": "/a"}}, "/a/")
    assert path_matches(
        {"path": {"type": "RegularExpression", "value": "/o/[^/]+/pim(/.*)?"}}, "/o/x/pim"
    )
    assert not path_matches(
        {"path": {"type": "RegularExpression", "value": "/o/[^/]+/pim(/.*)?"}}, "/o/x/pimx"
    )
    assert path_matches({}, "/anything")


def test_auth_route_exposes_no_other_plane(rendered: dict[str, Rendered]) -> None:
    route = find(rendered["split"].objects, "HTTPRoute", "auth", "appliance-auth")

    for path in (
        "/o/acme/pim/requests",
        "/o/acme/breakglass/activations",
        "/admin/v1/orgs",
        "/metrics",
    ):
        assert not route_matches(route, path), path


# --- Broken manifests ------------------------------------------------------------


def auth_deployment(objects: Objects) -> dict[str, Any]:
    return find(objects, "Deployment", "appliance", "appliance-auth")


def test_missing_security_context_field_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    del container(auth_deployment(objects))["securityContext"]["allowPrivilegeEscalation"]

    violations = check_all(objects)

    assert [(v.rule, v.message) for v in violations] == [
        ("pod-security", "allowPrivilegeEscalation is not false")
    ]


def test_missing_pod_seccomp_profile_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["simple"].objects)
    workload = find(objects, "StatefulSet", "appliance", "appliance")
    del workload["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
    del container(workload)["securityContext"]["seccompProfile"]

    assert rules_broken(objects) == {"pod-security"}


def test_namespace_without_restricted_standard_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    find(objects, "Namespace", "appliance-pim")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"
    ] = "baseline"

    assert rules_broken(objects) == {"pod-security"}


def test_gateway_shared_by_two_planes_fails(rendered: dict[str, Rendered]) -> None:
    """The admin route attaches to the auth plane's Gateway."""
    objects = edited(rendered["split"].objects)
    route = find(objects, "HTTPRoute", "admin", "appliance-admin")
    route["spec"]["parentRefs"] = [
        {"name": "appliance", "namespace": "appliance-auth", "sectionName": "https"}
    ]
    gateway = find(objects, "Gateway", "appliance", "appliance-auth")
    gateway["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"] = "All"

    violations = [v for v in check_all(objects) if v.rule == "gateway-isolation"]

    messages = {v.message for v in violations}
    assert "HTTPRoute appliance-admin/admin from another namespace is attached" in messages
    assert (
        "shared by Deployment appliance-admin/appliance, Deployment appliance-auth/appliance"
        in messages
    )
    assert "listener https accepts routes from All namespaces" in messages


def test_backend_of_another_plane_fails(rendered: dict[str, Rendered]) -> None:
    """The PIM route in the auth namespace sends PIM paths to the auth pods."""
    objects = edited(rendered["split"].objects)
    pim_route = edited([find(objects, "HTTPRoute", "pim", "appliance-pim")])[0]
    pim_route["metadata"]["namespace"] = "appliance-auth"
    objects.append(pim_route)

    messages = {v.message for v in check_all(objects) if v.rule == "route-exposure"}

    assert "sends pim path /o/acme/pim/requests to pods serving auth" in messages


def test_merged_envoy_fleet_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    find(objects, "EnvoyProxy", "appliance", "appliance-breakglass")["spec"]["mergeGateways"] = True

    assert rules_broken(objects) == {"gateway-isolation"}


def test_routed_metrics_path_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["simple"].objects)
    route = find(objects, "HTTPRoute", "admin", "appliance")
    route["spec"]["rules"][0]["matches"].append(
        {"path": {"type": "PathPrefix", "value": "/metrics"}}
    )

    messages = {v.message for v in check_all(objects) if v.rule == "route-exposure"}

    assert messages == {"routes /metrics"}


def test_missing_default_deny_fails(rendered: dict[str, Rendered]) -> None:
    objects = [
        obj
        for obj in edited(rendered["split"].objects)
        if not (
            obj["kind"] == "NetworkPolicy"
            and obj["metadata"]["name"] == "default-deny"
            and obj["metadata"]["namespace"] == "appliance-breakglass"
        )
    ]

    violations = check_all(objects)

    assert [(v.rule, v.target) for v in violations] == [
        ("default-deny", "Namespace appliance-breakglass")
    ]


def test_open_egress_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    policy = find(objects, "NetworkPolicy", "appliance", "appliance-admin")
    policy["spec"]["egress"].append(
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    )
    policy["spec"]["egress"].append({"ports": [{"port": 5432, "protocol": "TCP"}]})

    messages = [v.message for v in check_all(objects) if v.rule == "egress"]

    assert "PostgreSQL rule opens ports [('TCP', 443)]" in messages
    assert "PostgreSQL rule allows every address" in messages
    assert "allows every destination" in messages


def test_ingress_from_another_namespace_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    policy = find(objects, "NetworkPolicy", "appliance", "appliance-pim")
    policy["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "appliance-auth"}}}
    )

    assert rules_broken(objects) == {"ingress"}


def test_ingress_from_another_planes_envoy_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    policy = find(objects, "NetworkPolicy", "appliance", "appliance-breakglass")
    labels = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    labels["gateway.envoyproxy.io/owning-gateway-namespace"] = "appliance-auth"

    assert rules_broken(objects) == {"ingress"}


def test_missing_disruption_budget_fails(rendered: dict[str, Rendered]) -> None:
    objects = [
        obj
        for obj in edited(rendered["split"].objects)
        if not (
            obj["kind"] == "PodDisruptionBudget" and obj["metadata"]["namespace"] == "appliance-pim"
        )
    ]

    violations = check_all(objects)

    assert [(v.rule, v.target) for v in violations] == [
        ("disruption-budget", "Deployment appliance-pim/appliance")
    ]


def test_autoscaler_on_admin_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    hpa = edited([find(objects, "HorizontalPodAutoscaler", "appliance", "appliance-auth")])[0]
    hpa["metadata"]["namespace"] = "appliance-admin"
    objects.append(hpa)

    messages = {v.message for v in check_all(objects) if v.rule == "autoscaling"}

    assert messages == {"scales a workload serving admin; only auth autoscales"}


def test_wrong_resource_budget_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    container(find(objects, "Deployment", "appliance", "appliance-admin"))["resources"]["limits"][
        "memory"
    ] = "512Mi"

    assert rules_broken(objects) == {"resources"}


def test_route_without_vpn_policy_fails(rendered: dict[str, Rendered]) -> None:
    objects = [
        obj
        for obj in edited(rendered["simple"].objects)
        if obj["kind"] != "SecurityPolicy" or obj["metadata"]["name"] != "breakglass-vpn-only"
    ]

    violations = check_all(objects)

    assert [(v.rule, v.target) for v in violations] == [
        ("vpn-allow-list", "HTTPRoute appliance/breakglass")
    ]


def test_spoofable_client_address_fails(rendered: dict[str, Rendered]) -> None:
    objects = [
        obj
        for obj in edited(rendered["split"].objects)
        if not (
            obj["kind"] == "ClientTrafficPolicy"
            and obj["metadata"]["namespace"] == "appliance-admin"
        )
    ]

    violations = check_all(objects)

    assert [(v.rule, v.message) for v in violations] == [
        ("vpn-allow-list", "no ClientTrafficPolicy sets clientIPDetection")
    ]


def test_other_planes_secret_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    spec = auth_deployment(objects)["spec"]["template"]["spec"]
    spec["volumes"].append(
        {"name": "stolen", "secret": {"secretName": "appliance-breakglass-master-secret"}}
    )

    messages = {v.message for v in check_all(objects) if v.rule == "secret-isolation"}

    assert messages == {
        "uses Secret appliance-breakglass-master-secret, which is not one of its own"
    }


def test_secret_in_manifests_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "appliance-auth-database", "namespace": "appliance-auth"},
        }
    )

    assert rules_broken(objects) == {"secret-isolation"}


def test_breakglass_data_on_scratch_volume_fails(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    workload = find(objects, "StatefulSet", "appliance", "appliance-breakglass")
    workload["spec"]["volumeClaimTemplates"] = []
    workload["spec"]["template"]["spec"]["volumes"].append({"name": "data", "emptyDir": {}})

    messages = {v.message for v in check_all(objects) if v.rule == "plane-configuration"}

    assert messages == {"APPLIANCE_DATA_DIR is not on a PersistentVolumeClaim"}


def test_dangling_references_fail(rendered: dict[str, Rendered]) -> None:
    objects = edited(rendered["split"].objects)
    find(objects, "SecurityPolicy", "admin-vpn-only", "appliance-admin")["spec"]["targetRefs"][0][
        "name"
    ] = "admni"
    find(objects, "HTTPRoute", "pim", "appliance-pim")["spec"]["rules"][0]["backendRefs"][0][
        "port"
    ] = 80
    find(objects, "Gateway", "appliance", "appliance-auth")["spec"]["gatewayClassName"] = "eg"

    messages = {v.message for v in check_all(objects) if v.rule == "references"}

    assert "HTTPRoute appliance-admin/admni not found" in messages
    assert "port 80 not found on Service appliance-pim/appliance" in messages
    assert "GatewayClass eg not found" in messages
