"""Rules for traffic: default-deny NetworkPolicies with egress only to PostgreSQL
and DNS, Gateways that serve one plane each, routes that expose only their
plane's paths, and the VPN allow-list."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.manifest_model import (
    APP_PORT,
    DNS_PORT,
    ENVOY_NAMESPACE,
    OWNING_GATEWAY_NAME,
    OWNING_GATEWAY_NAMESPACE,
    PLANE_PATHS,
    POSTGRES_PORT,
    UNROUTED_PATHS,
    VPN_ONLY_PLANES,
    Manifests,
    Violation,
    ref,
    serve_planes,
)

# --- Networking -----------------------------------------------------------------


def is_default_deny(policy: dict[str, Any]) -> bool:
    spec = policy["spec"]
    return (
        spec.get("podSelector") in ({}, None)
        and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def check_default_deny(manifests: Manifests) -> list[Violation]:
    """Every namespace with a workload has a default-deny policy for both directions."""
    rule = "default-deny"
    violations: list[Violation] = []
    for namespace in sorted(manifests.namespaces_with_workloads()):
        policies = [
            p for p in manifests.of_kind("NetworkPolicy") if p["metadata"]["namespace"] == namespace
        ]
        if not any(is_default_deny(policy) for policy in policies):
            violations.append(
                Violation(
                    rule,
                    f"Namespace {namespace}",
                    "no default-deny NetworkPolicy for Ingress and Egress",
                )
            )
    return violations


def _is_dns_peer(peer: dict[str, Any]) -> bool:
    namespace_labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
    pod_labels_ = peer.get("podSelector", {}).get("matchLabels", {})
    return namespace_labels == {"kubernetes.io/metadata.name": "kube-system"} and pod_labels_ == {
        "k8s-app": "kube-dns"
    }


def _ports(rule_: dict[str, Any]) -> set[tuple[str, Any]]:
    return {(port.get("protocol", "TCP"), port.get("port")) for port in rule_.get("ports", [])}


def check_egress(manifests: Manifests) -> list[Violation]:
    """Egress goes only to cluster DNS on port 53 and to PostgreSQL (an ipBlock
    without exceptions) on port 5432."""
    rule = "egress"
    violations: list[Violation] = []
    for policy in manifests.of_kind("NetworkPolicy"):
        for index, egress in enumerate(policy["spec"].get("egress", [])):
            where = f"{ref(policy)} egress[{index}]"
            peers, ports = egress.get("to", []), _ports(egress)
            if not peers:
                violations.append(Violation(rule, where, "allows every destination"))
                continue
            if not ports:
                violations.append(Violation(rule, where, "allows every port"))
                continue
            if all(_is_dns_peer(peer) for peer in peers):
                if not ports <= {("UDP", DNS_PORT), ("TCP", DNS_PORT)}:
                    violations.append(
                        Violation(rule, where, f"DNS rule opens ports {sorted(ports)}")
                    )
                continue
            if all(
                set(peer) == {"ipBlock"} and not peer["ipBlock"].get("except") for peer in peers
            ):
                if ports != {("TCP", POSTGRES_PORT)}:
                    violations.append(
                        Violation(rule, where, f"PostgreSQL rule opens ports {sorted(ports)}")
                    )
                for peer in peers:
                    if peer["ipBlock"]["cidr"] in ("0.0.0.0/0", "::/0"):
                        violations.append(
                            Violation(rule, where, "PostgreSQL rule allows every address")
                        )
                continue
            violations.append(
                Violation(
                    rule, where, "destination is neither cluster DNS nor a PostgreSQL ipBlock"
                )
            )
    return violations


def check_ingress(manifests: Manifests) -> list[Violation]:
    """Ingress comes only from the Envoy fleet of a Gateway in the same namespace,
    to the application port."""
    rule = "ingress"
    violations: list[Violation] = []
    for policy in manifests.of_kind("NetworkPolicy"):
        namespace = policy["metadata"]["namespace"]
        for index, ingress in enumerate(policy["spec"].get("ingress", [])):
            where = f"{ref(policy)} ingress[{index}]"
            peers = ingress.get("from", [])
            if not peers:
                violations.append(Violation(rule, where, "allows every source"))
            for peer in peers:
                namespace_labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                if namespace_labels != {"kubernetes.io/metadata.name": ENVOY_NAMESPACE}:
                    violations.append(Violation(rule, where, f"source outside {ENVOY_NAMESPACE}"))
                    continue
                gateway_name, gateway_namespace = (
                    labels.get(OWNING_GATEWAY_NAME),
                    labels.get(OWNING_GATEWAY_NAMESPACE),
                )
                if (
                    gateway_namespace != namespace
                    or manifests.get("Gateway", namespace, str(gateway_name)) is None
                ):
                    violations.append(
                        Violation(
                            rule,
                            where,
                            f"source is the Envoy fleet of Gateway {gateway_namespace}/"
                            f"{gateway_name}, not of a Gateway in {namespace}",
                        )
                    )
            if _ports(ingress) not in ({("TCP", "http")}, {("TCP", APP_PORT)}):
                violations.append(
                    Violation(
                        rule,
                        where,
                        f"ports {sorted(_ports(ingress))} are not only the application port",
                    )
                )
    return violations


# --- Gateways and routes ----------------------------------------------------------


def path_matches(match: dict[str, Any], path: str) -> bool:
    """Apply one HTTPRoute path match the way Envoy Gateway does."""
    path_match = match.get("path", {"type": "PathPrefix", "value": "/"})
    kind, value = path_match.get("type", "PathPrefix"), path_match.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    if kind == "RegularExpression":
        return re.fullmatch(value, path) is not None
    raise ValueError(f"unknown path match type {kind!r}")


def route_matches(route: dict[str, Any], path: str) -> bool:
    for rule_ in route["spec"].get("rules", []):
        matches = rule_.get("matches") or [{}]
        if any(path_matches(match, path) for match in matches):
            return True
    return False


def route_backend_planes(manifests: Manifests, route: dict[str, Any]) -> set[str]:
    """Return the planes served by the pods behind a route's backend Services."""
    namespace = route["metadata"]["namespace"]
    planes: set[str] = set()
    for rule_ in route["spec"].get("rules", []):
        for backend in rule_.get("backendRefs", []):
            service = manifests.get("Service", backend.get("namespace", namespace), backend["name"])
            if service is None:
                continue
            for workload in manifests.pods_matching(
                service["metadata"]["namespace"],
                {"matchLabels": service["spec"].get("selector", {})},
            ):
                planes.update(serve_planes(workload))
    return planes


def attached_routes(manifests: Manifests, gateway: dict[str, Any]) -> list[dict[str, Any]]:
    name, namespace = gateway["metadata"]["name"], gateway["metadata"]["namespace"]
    return [
        route
        for route in manifests.of_kind("HTTPRoute", "GRPCRoute")
        for parent in route["spec"].get("parentRefs", [])
        if parent.get("kind", "Gateway") == "Gateway"
        and parent["name"] == name
        and parent.get("namespace", route["metadata"]["namespace"]) == namespace
    ]


def check_gateway_isolation(manifests: Manifests) -> list[Violation]:
    """No Gateway serves two planes' workloads, accepts routes from another
    namespace, or shares its Envoy fleet with another Gateway."""
    rule = "gateway-isolation"
    violations: list[Violation] = []
    for gateway in manifests.of_kind("Gateway"):
        target = ref(gateway)
        workloads_behind: set[str] = set()
        for route in attached_routes(manifests, gateway):
            if route["metadata"]["namespace"] != gateway["metadata"]["namespace"]:
                violations.append(
                    Violation(rule, target, f"{ref(route)} from another namespace is attached")
                )
            for rule_ in route["spec"].get("rules", []):
                for backend in rule_.get("backendRefs", []):
                    service = manifests.get(
                        "Service",
                        backend.get("namespace", route["metadata"]["namespace"]),
                        backend["name"],
                    )
                    if service is None:
                        continue
                    for workload in manifests.pods_matching(
                        service["metadata"]["namespace"],
                        {"matchLabels": service["spec"].get("selector", {})},
                    ):
                        workloads_behind.add(ref(workload))
        if len(workloads_behind) > 1:
            violations.append(
                Violation(rule, target, f"shared by {', '.join(sorted(workloads_behind))}")
            )
        for listener in gateway["spec"]["listeners"]:
            source = listener.get("allowedRoutes", {}).get("namespaces", {}).get("from", "Same")
            if source != "Same":
                violations.append(
                    Violation(
                        rule,
                        target,
                        f"listener {listener['name']} accepts routes from {source} namespaces",
                    )
                )
        parameters = gateway["spec"].get("infrastructure", {}).get("parametersRef")
        envoy_proxy = (
            manifests.get("EnvoyProxy", gateway["metadata"]["namespace"], parameters["name"])
            if parameters
            else None
        )
        if envoy_proxy is None:
            violations.append(Violation(rule, target, "has no EnvoyProxy of its own"))
        elif envoy_proxy["spec"].get("mergeGateways") is not False:
            violations.append(Violation(rule, ref(envoy_proxy), "mergeGateways is not false"))
    return violations


def check_route_exposure(manifests: Manifests) -> list[Violation]:
    """Each plane's paths reach only pods serving that plane, no Gateway sends
    health, readiness, metrics or unknown paths anywhere, and in a namespace
    of one plane the Gateway exposes no other plane's paths."""
    rule = "route-exposure"
    violations: list[Violation] = []
    for route in manifests.of_kind("HTTPRoute"):
        target = ref(route)
        backend_planes = route_backend_planes(manifests, route)
        for path in UNROUTED_PATHS:
            if route_matches(route, path):
                violations.append(Violation(rule, target, f"routes {path}"))
        for plane, paths in PLANE_PATHS.items():
            for path in paths:
                if route_matches(route, path) and plane not in backend_planes:
                    served = ", ".join(sorted(backend_planes)) or "nothing"
                    violations.append(
                        Violation(
                            rule, target, f"sends {plane} path {path} to pods serving {served}"
                        )
                    )

    for workload in manifests.serving_workloads():
        namespace = workload["metadata"]["namespace"]
        routes = [
            route
            for route in manifests.of_kind("HTTPRoute")
            if route["metadata"]["namespace"] == namespace
        ]
        for plane in serve_planes(workload):
            for path in PLANE_PATHS[plane]:
                if not any(route_matches(route, path) for route in routes):
                    violations.append(
                        Violation(
                            rule,
                            ref(workload),
                            f"no route in {namespace} serves {plane} path {path}",
                        )
                    )
    return violations


def _policies_covering(
    manifests: Manifests, kind: str, route: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the policies of a kind that target a route or one of its Gateways."""
    namespace = route["metadata"]["namespace"]
    gateways = {parent["name"] for parent in route["spec"].get("parentRefs", [])}
    covering = []
    for policy in manifests.of_kind(kind):
        if policy["metadata"]["namespace"] != namespace:
            continue
        for target in policy["spec"].get("targetRefs", []):
            if (target["kind"] == "HTTPRoute" and target["name"] == route["metadata"]["name"]) or (
                target["kind"] == "Gateway" and target["name"] in gateways
            ):
                covering.append(policy)
    return covering


def check_vpn_allow_list(manifests: Manifests) -> list[Violation]:
    """Routes to the admin, PIM and break-glass paths admit only VPN CIDRs, and
    their Gateway takes the client address from the connection, not from a
    header the client controls."""
    rule = "vpn-allow-list"
    violations: list[Violation] = []
    for route in manifests.of_kind("HTTPRoute"):
        planes = {
            plane
            for plane in VPN_ONLY_PLANES
            for path in PLANE_PATHS[plane]
            if route_matches(route, path)
        }
        if not planes:
            continue
        target = ref(route)
        policies = _policies_covering(manifests, "SecurityPolicy", route)
        if not policies:
            violations.append(
                Violation(
                    rule, target, f"serves {', '.join(sorted(planes))} without a SecurityPolicy"
                )
            )
        for policy in policies:
            authorization = policy["spec"].get("authorization", {})
            if authorization.get("defaultAction", "Deny") != "Deny":
                violations.append(Violation(rule, ref(policy), "defaultAction is not Deny"))
            allow_rules = [r for r in authorization.get("rules", []) if r.get("action") == "Allow"]
            if not allow_rules:
                violations.append(Violation(rule, ref(policy), "has no Allow rule"))
            for allow in allow_rules:
                cidrs = allow.get("principal", {}).get("clientCIDRs", [])
                if not cidrs or set(allow.get("principal", {})) != {"clientCIDRs"}:
                    violations.append(
                        Violation(
                            rule,
                            ref(policy),
                            f"rule {allow.get('name')} allows more than clientCIDRs",
                        )
                    )
                if any(cidr in ("0.0.0.0/0", "::/0") for cidr in cidrs):
                    violations.append(
                        Violation(
                            rule, ref(policy), f"rule {allow.get('name')} allows every address"
                        )
                    )

        for parent in route["spec"].get("parentRefs", []):
            gateway = manifests.get("Gateway", route["metadata"]["namespace"], parent["name"])
            if gateway is None:
                continue
            client_policies = [
                p
                for p in manifests.of_kind("ClientTrafficPolicy")
                if p["metadata"]["namespace"] == gateway["metadata"]["namespace"]
                and any(
                    t["kind"] == "Gateway" and t["name"] == parent["name"]
                    for t in p["spec"].get("targetRefs", [])
                )
            ]
            detection = [
                p["spec"].get("clientIPDetection")
                for p in client_policies
                if p["spec"].get("clientIPDetection")
            ]
            if not detection:
                violations.append(
                    Violation(rule, ref(gateway), "no ClientTrafficPolicy sets clientIPDetection")
                )
            for setting in detection:
                forwarded = setting.get("xForwardedFor")
                if (
                    forwarded is not None
                    and "numTrustedHops" not in forwarded
                    and "trustedCIDRs" not in forwarded
                ):
                    violations.append(
                        Violation(
                            rule, ref(gateway), "xForwardedFor trusts an unbounded number of hops"
                        )
                    )
    return violations
