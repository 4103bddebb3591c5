"""The staging driver issues exactly these kubectl commands (no cluster here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.settings import Plane
from chaos.kubernetes import KubernetesDriver, without_postgres_egress
from chaos.proxy import ProxyMode

POLICY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {
        "name": "appliance",
        "namespace": "appliance-pim",
        "resourceVersion": "17",
        "uid": "u-1",
        "managedFields": [],
    },
    "spec": {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "appliance"}},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [
            {"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]},
            {
                "to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}],
                "ports": [{"port": 5432, "protocol": "TCP"}],
            },
        ],
    },
}


class FakeKubectl:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    async def __call__(self, argv: list[str], stdin: str | None) -> str:
        self.calls.append((argv, stdin))
        if "get" in argv and "networkpolicy" in argv:
            return json.dumps(POLICY)
        return ""


@pytest.fixture
def kubectl() -> FakeKubectl:
    return FakeKubectl()


async def test_kill_plane_force_deletes_its_pods(kubectl: FakeKubectl) -> None:
    driver = KubernetesDriver(runner=kubectl, context="staging")

    await driver.kill_plane(Plane.PIM)

    assert kubectl.calls == [
        (
            [
                "kubectl",
                "--context",
                "staging",
                "--namespace",
                "appliance-pim",
                "delete",
                "pod",
                "--selector",
                "app.kubernetes.io/component=pim",
                "--grace-period=0",
                "--force",
                "--wait=false",
            ],
            None,
        )
    ]


async def test_scale_down_and_back_uses_workload_kind(kubectl: FakeKubectl) -> None:
    driver = KubernetesDriver(runner=kubectl, replicas=2)

    await driver.scale_down_plane(Plane.BREAKGLASS)
    await driver.start_plane(Plane.BREAKGLASS)
    await driver.scale_down_plane(Plane.AUTH)

    assert [argv for argv, _ in kubectl.calls] == [
        [
            "kubectl",
            "--namespace",
            "appliance-breakglass",
            "scale",
            "statefulset/appliance",
            "--replicas=0",
        ],
        [
            "kubectl",
            "--namespace",
            "appliance-breakglass",
            "scale",
            "statefulset/appliance",
            "--replicas=2",
        ],
        [
            "kubectl",
            "--namespace",
            "appliance-breakglass",
            "rollout",
            "status",
            "statefulset/appliance",
            "--timeout=120s",
        ],
        [
            "kubectl",
            "--namespace",
            "appliance-auth",
            "scale",
            "deployment/appliance",
            "--replicas=0",
        ],
    ]


async def test_start_after_kill_only_waits_for_rollout(kubectl: FakeKubectl) -> None:
    driver = KubernetesDriver(runner=kubectl)

    await driver.start_plane(Plane.ADMIN)

    assert kubectl.calls == [
        (
            [
                "kubectl",
                "--namespace",
                "appliance-admin",
                "rollout",
                "status",
                "deployment/appliance",
                "--timeout=120s",
            ],
            None,
        )
    ]


async def test_partition_applies_policy_without_postgres(kubectl: FakeKubectl) -> None:
    driver = KubernetesDriver(runner=kubectl)

    await driver.partition(Plane.PIM, ProxyMode.DROP)
    await driver.partition(Plane.PIM, ProxyMode.PASS)

    (get, _), (cut, cut_stdin), (restore, restore_stdin) = kubectl.calls
    assert get == [
        "kubectl",
        "--namespace",
        "appliance-pim",
        "get",
        "networkpolicy",
        "appliance",
        "--output=json",
    ]
    assert cut == ["kubectl", "apply", "--filename=-"]
    assert restore == ["kubectl", "apply", "--filename=-"]
    assert cut_stdin is not None
    assert restore_stdin is not None
    applied = json.loads(cut_stdin)
    assert applied["spec"]["egress"] == [POLICY["spec"]["egress"][0]]
    assert "resourceVersion" not in applied["metadata"]
    restored = json.loads(restore_stdin)
    assert restored["spec"]["egress"] == POLICY["spec"]["egress"]


async def test_stop_database_cuts_every_plane(kubectl: FakeKubectl) -> None:
    driver = KubernetesDriver(runner=kubectl)

    await driver.stop_database()

    namespaces = [argv[2] for argv, _ in kubectl.calls if "get" in argv]
    assert namespaces == [
        "appliance-auth",
        "appliance-admin",
        "appliance-pim",
        "appliance-breakglass",
    ]


def test_policy_cut_keeps_dns_egress() -> None:
    cut = without_postgres_egress(POLICY)

    assert cut["spec"]["egress"] == [POLICY["spec"]["egress"][0]]
    assert POLICY["spec"]["egress"][1]["ports"][0]["port"] == 5432
