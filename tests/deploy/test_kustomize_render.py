"""Both topologies and their migration Jobs render, with the objects, planes
and site values that deploy/README.md promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.deploy_support import KUBERNETES_DIR, Rendered, container, find, render, tool_path
from tests.deploy.manifest_rules import PLANES, Manifests, serve_planes

SPLIT_NAMESPACES = {f"appliance-{plane}" for plane in PLANES}


def test_every_kustomization_renders(rendered: dict[str, Rendered]) -> None:
    for name, item in rendered.items():
        assert item.objects, f"{name} rendered no objects"
        for obj in item.objects:
            assert obj["metadata"].get("name"), f"{name}: object without a name: {obj}"


def test_simple_serves_all_planes_from_three_pods(rendered: dict[str, Rendered]) -> None:
    manifests = Manifests(rendered["simple"].objects)
    workloads = manifests.workloads()

    assert [(w["kind"], w["metadata"]["namespace"]) for w in workloads] == [
        ("StatefulSet", "appliance")
    ]
    assert workloads[0]["spec"]["replicas"] == 3
    assert serve_planes(workloads[0]) == PLANES
    assert len(manifests.of_kind("Gateway")) == 1
    assert not manifests.of_kind("HorizontalPodAutoscaler")


def test_split_runs_one_workload_per_plane_namespace(rendered: dict[str, Rendered]) -> None:
    manifests = Manifests(rendered["split"].objects)
    by_namespace = {w["metadata"]["namespace"]: w for w in manifests.serving_workloads()}

    assert set(by_namespace) == SPLIT_NAMESPACES
    assert {n["metadata"]["name"] for n in manifests.of_kind("Namespace")} == SPLIT_NAMESPACES
    for plane in PLANES:
        workload = by_namespace[f"appliance-{plane}"]
        assert serve_planes(workload) == (plane,)
        expected_kind = "StatefulSet" if plane == "breakglass" else "Deployment"
        assert workload["kind"] == expected_kind, f"{plane} runs as {workload['kind']}"


def test_split_places_each_plane_on_its_node_pool(rendered: dict[str, Rendered]) -> None:
    manifests = Manifests(rendered["split"].objects)

    for workload in manifests.serving_workloads():
        (plane,) = serve_planes(workload)
        spec = workload["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {"appliance/node-pool": plane}
        assert {
            "key": "appliance/node-pool",
            "operator": "Equal",
            "value": plane,
            "effect": "NoSchedule",
        } in spec["tolerations"]

        envoy_proxy = find(
            rendered["split"].objects, "EnvoyProxy", "appliance", workload["metadata"]["namespace"]
        )
        envoy_pod = envoy_proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["pod"]
        assert envoy_pod["nodeSelector"] == {"appliance/node-pool": plane}


def test_split_gives_each_plane_its_own_gateway(rendered: dict[str, Rendered]) -> None:
    manifests = Manifests(rendered["split"].objects)
    gateways = manifests.of_kind("Gateway")

    assert sorted(g["metadata"]["namespace"] for g in gateways) == sorted(SPLIT_NAMESPACES)
    hostnames = [g["spec"]["listeners"][0]["hostname"] for g in gateways]
    assert len(set(hostnames)) == len(hostnames)


def test_migration_job_runs_in_its_own_namespace(rendered: dict[str, Rendered]) -> None:
    for name in ("simple-migrate", "split-migrate"):
        objects = rendered[name].objects
        job = find(objects, "Job", "appliance-migrate", "appliance-migrate")
        args = container(job, "migrate")["args"]

        assert args[0] == "migrate"
        assert "--role-password-dir" in args
        assert {obj["kind"] for obj in objects} == {
            "Namespace",
            "ServiceAccount",
            "NetworkPolicy",
            "Job",
        }


def test_migration_job_uses_the_planes_image(rendered: dict[str, Rendered]) -> None:
    for topology in ("simple", "split"):
        plane_images = {
            item["image"]
            for workload in Manifests(rendered[topology].objects).workloads()
            for item in workload["spec"]["template"]["spec"]["containers"]
        }
        job = find(rendered[f"{topology}-migrate"].objects, "Job", "appliance-migrate")

        assert len(plane_images) == 1, f"{topology} runs several images: {plane_images}"
        assert container(job, "migrate")["image"] in plane_images
        assert ":" in next(iter(plane_images)), "the image has no tag or digest"


def test_no_manifest_contains_a_secret(rendered: dict[str, Rendered]) -> None:
    for name, item in rendered.items():
        kinds = {obj["kind"] for obj in item.objects}
        assert "Secret" not in kinds, f"{name} contains a Secret"
        assert "ConfigMap" not in kinds, f"{name} leaks the local site ConfigMap"


@pytest.mark.parametrize("topology", ["simple", "split"])
def test_site_values_reach_every_field(topology: str, tmp_path: Path) -> None:
    """Edit only site.yaml, as an operator would, and find the new values in
    every field that the placeholders filled."""
    tree = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES_DIR, tree)
    site_file = tree / "overlays" / topology / "site" / "site.yaml"
    site = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    placeholders = dict(site["data"])
    for key in site["data"]:
        if key.endswith("hostname"):
            site["data"][key] = key.replace("hostname", "host").strip("-") + ".corp.test"
    site["data"]["postgres-cidr"] = "10.20.30.40/32"
    site["data"]["vpn-cidr"] = "10.99.0.0/16"
    site_file.write_text(yaml.safe_dump(site), encoding="utf-8")

    planes = render(tree / "overlays" / topology, tmp_path / "planes.yaml")
    migrate = render(tree / "overlays" / topology / "migrate", tmp_path / "migrate.yaml")
    text = planes.path.read_text(encoding="utf-8") + migrate.path.read_text(encoding="utf-8")

    for key, value in placeholders.items():
        assert value not in text, f"placeholder {key}={value} survived the edit"
    manifests = Manifests(planes.objects + migrate.objects)
    for policy in manifests.of_kind("NetworkPolicy"):
        for egress in policy["spec"].get("egress", []):
            for peer in egress["to"]:
                if "ipBlock" in peer:
                    assert peer["ipBlock"]["cidr"] == "10.20.30.40/32"
    for policy in manifests.of_kind("SecurityPolicy"):
        assert policy["spec"]["authorization"]["rules"][0]["principal"]["clientCIDRs"] == [
            "10.99.0.0/16"
        ]
    for workload in manifests.serving_workloads():
        gateway = find(manifests.objects, "Gateway", "appliance", workload["metadata"]["namespace"])
        hostname = gateway["spec"]["listeners"][0]["hostname"]
        public_url = next(
            e["value"] for e in container(workload)["env"] if e["name"] == "APPLIANCE_PUBLIC_URL"
        )
        assert hostname.endswith(".corp.test")
        assert public_url == f"https://{hostname}"


def test_missing_validator_fails_with_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("APPLIANCE_DEPLOY_VENV", str(tmp_path))

    with pytest.raises(pytest.fail.Exception, match=r"bash deploy/install-validators\.sh"):
        tool_path("kubectl")
