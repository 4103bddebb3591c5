"""The staging driver issues exactly these kubectl commands (no cluster here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.settings import Plane
from chaos.kubernetes import (
    KubectlError,
    KubernetesDriver,
    run_kubectl,
    without_postgres_egress,
)
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


class FailingApply(FakeKubectl):
    """Runs every command except `apply`, which fails like an expired credential."""

    async def __call__(self, argv: list[str], stdin: str | None) -> str:
        if "apply" in argv:
            self.calls.append((argv, stdin))
            raise KubectlError(f"{' '.join(argv)} exited 1: Unauthorized")
        return await super().__call__(argv, stdin)


async def test_teardown_tries_every_restore() -> None:
    kubectl = FakeKubectl()
    driver = KubernetesDriver(runner=kubectl)
    for plane in Plane:
        await driver.partition(plane, ProxyMode.DROP)
    await driver.scale_down_plane(Plane.PIM)
    failing = FailingApply()
    driver.runner = failing

    with pytest.raises(KubectlError) as raised:
        await driver.teardown()

    applies = [argv for argv, _ in failing.calls if "apply" in argv]
    assert len(applies) == len(Plane)
    scaled = [argv for argv, _ in failing.calls if "scale" in argv]
    assert scaled == [
        ["kubectl", "--namespace", "appliance-pim", "scale", "deployment/appliance", "--replicas=2"]
    ]
    message = str(raised.value)
    for plane in Plane:
        assert f"appliance-{plane.value} is still cut from PostgreSQL" in message
    assert '"egress"' in message


async def test_cut_without_postgres_rule_fails(kubectl: FakeKubectl) -> None:
    policy = json.loads(json.dumps(POLICY))
    policy["spec"]["egress"] = policy["spec"]["egress"][:1]

    async def runner(argv: list[str], stdin: str | None) -> str:
        kubectl.calls.append((argv, stdin))
        return json.dumps(policy)

    driver = KubernetesDriver(runner=runner)

    with pytest.raises(KubectlError, match="no egress rule for port 5432"):
        await driver.partition(Plane.BREAKGLASS, ProxyMode.DROP)
    assert not any("apply" in argv for argv, _ in kubectl.calls)


async def test_breakglass_kill_keeps_grace() -> None:
    kubectl = FakeKubectl()
    driver = KubernetesDriver(runner=kubectl)

    await driver.kill_plane(Plane.BREAKGLASS)

    argv = kubectl.calls[0][0]
    assert "--grace-period=1" in argv
    assert "--force" not in argv


async def test_missing_kubectl_is_reported() -> None:
    with pytest.raises(KubectlError, match="cannot run /nonexistent/kubectl"):
        await run_kubectl(["/nonexistent/kubectl", "version"], None)
