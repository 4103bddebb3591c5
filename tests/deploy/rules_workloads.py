"""Rules for workloads: the restricted Pod Security Standard, resource budgets,
probes and rollouts, disruption budgets, autoscaling, and each plane's
secrets and settings."""

from __future__ import annotations

from typing import Any

from tests.deploy.manifest_model import (
    APP_PORT,
    MIN_RUN_AS_USER,
    PLANES,
    RESOURCE_BUDGET,
    Manifests,
    Violation,
    containers,
    env_value,
    pod_labels,
    pod_spec,
    ref,
    selector_matches,
    serve_planes,
)

# --- Pod security -------------------------------------------------------------


def check_pod_security(manifests: Manifests) -> list[Violation]:
    """Every pod follows the restricted Pod Security Standard and mounts no token,
    and its namespace enforces that standard."""
    rule = "pod-security"
    violations: list[Violation] = []
    for workload in manifests.workloads():
        target = ref(workload)
        spec = pod_spec(workload)
        pod_context = spec.get("securityContext", {})

        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                violations.append(Violation(rule, target, f"{field} is set"))
        if spec.get("automountServiceAccountToken") is not False:
            violations.append(Violation(rule, target, "automountServiceAccountToken is not false"))
        for volume in spec.get("volumes", []):
            if "hostPath" in volume:
                violations.append(Violation(rule, target, f"volume {volume['name']} is a hostPath"))

        for item in containers(workload):
            where = f"{target} container {item['name']}"
            context = item.get("securityContext")
            if context is None:
                violations.append(Violation(rule, where, "no securityContext"))
                context = {}
            run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            if run_as_non_root is not True:
                violations.append(Violation(rule, where, "runAsNonRoot is not true"))
            run_as_user = context.get("runAsUser", pod_context.get("runAsUser"))
            if run_as_user is None or run_as_user < MIN_RUN_AS_USER:
                violations.append(
                    Violation(
                        rule, where, f"runAsUser {run_as_user} is not a UID >= {MIN_RUN_AS_USER}"
                    )
                )
            if context.get("allowPrivilegeEscalation") is not False:
                violations.append(Violation(rule, where, "allowPrivilegeEscalation is not false"))
            if context.get("privileged"):
                violations.append(Violation(rule, where, "privileged is set"))
            if context.get("readOnlyRootFilesystem") is not True:
                violations.append(Violation(rule, where, "readOnlyRootFilesystem is not true"))
            capabilities = context.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []):
                violations.append(Violation(rule, where, "capabilities do not drop ALL"))
            if capabilities.get("add"):
                violations.append(Violation(rule, where, f"capabilities add {capabilities['add']}"))
            seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
            if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
                violations.append(
                    Violation(rule, where, "seccompProfile is not RuntimeDefault or Localhost")
                )

    for namespace_name in sorted(manifests.namespaces_with_workloads()):
        namespace = manifests.get("Namespace", None, namespace_name)
        labels = (namespace or {}).get("metadata", {}).get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            violations.append(
                Violation(
                    rule,
                    f"Namespace {namespace_name}",
                    "does not enforce the restricted Pod Security Standard",
                )
            )
    return violations


# --- Resources, probes and rollouts ---------------------------------------------


def parse_cpu(quantity: str) -> int:
    """Return a CPU quantity in millicores."""
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def parse_memory(quantity: str) -> int:
    """Return a memory quantity in MiB (Mi and Gi suffixes only)."""
    if quantity.endswith("Gi"):
        return int(quantity[:-2]) * 1024
    if quantity.endswith("Mi"):
        return int(quantity[:-2])
    raise ValueError(f"unsupported memory quantity {quantity!r}: use Mi or Gi")


def check_resources(manifests: Manifests) -> list[Violation]:
    """Each serving workload has the budget of its planes: the table's values for
    one plane, their sum for `--plane all`."""
    rule = "resources"
    violations: list[Violation] = []
    for workload in manifests.serving_workloads():
        planes = serve_planes(workload)
        expected = (
            sum(parse_cpu(RESOURCE_BUDGET[plane][0]) for plane in planes),
            sum(parse_memory(RESOURCE_BUDGET[plane][1]) for plane in planes),
            sum(parse_memory(RESOURCE_BUDGET[plane][2]) for plane in planes),
        )
        for item in pod_spec(workload)["containers"]:
            resources = item.get("resources", {})
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            missing = [
                name
                for name, value in (
                    ("requests.cpu", requests.get("cpu")),
                    ("requests.memory", requests.get("memory")),
                    ("limits.memory", limits.get("memory")),
                )
                if value is None
            ]
            if missing:
                violations.append(Violation(rule, ref(workload), f"missing {', '.join(missing)}"))
                continue
            actual = (
                parse_cpu(requests["cpu"]),
                parse_memory(requests["memory"]),
                parse_memory(limits["memory"]),
            )
            if actual != expected:
                violations.append(
                    Violation(
                        rule,
                        ref(workload),
                        f"cpu request, memory request, memory limit are {actual} (m, Mi, Mi), "
                        f"expected {expected} for planes {', '.join(planes)}",
                    )
                )
    return violations


def check_probes_and_rollout(manifests: Manifests) -> list[Violation]:
    """Serving pods probe /healthz for liveness and /readyz for readiness (a pod
    serving break-glass and other planes: /healthz), run at least two
    replicas, and roll out without dropping below that count."""
    rule = "probes-and-rollout"
    violations: list[Violation] = []
    autoscaled = {
        (
            hpa["metadata"]["namespace"],
            hpa["spec"]["scaleTargetRef"]["kind"],
            hpa["spec"]["scaleTargetRef"]["name"],
        ): hpa
        for hpa in manifests.of_kind("HorizontalPodAutoscaler")
    }
    for workload in manifests.serving_workloads():
        target = ref(workload)
        item = pod_spec(workload)["containers"][0]
        # A pod serving break-glass beside other planes must stay ready while
        # PostgreSQL is unreachable, but /readyz then fails for the other planes.
        planes = serve_planes(workload)
        readiness = "/healthz" if "breakglass" in planes and len(planes) > 1 else "/readyz"
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", readiness),
            ("startupProbe", "/healthz"),
        ):
            http_get = item.get(probe, {}).get("httpGet", {})
            if http_get.get("path") != path:
                violations.append(Violation(rule, target, f"{probe} does not request {path}"))
        key = (workload["metadata"]["namespace"], workload["kind"], workload["metadata"]["name"])
        hpa = autoscaled.get(key)
        replicas = hpa["spec"].get("minReplicas", 1) if hpa else workload["spec"].get("replicas", 1)
        if replicas < 2:
            violations.append(
                Violation(rule, target, f"{replicas} replica(s): one pod restart is an outage")
            )
        if hpa and "replicas" in workload["spec"]:
            violations.append(
                Violation(
                    rule, target, "sets replicas although a HorizontalPodAutoscaler owns them"
                )
            )
        if workload["kind"] == "Deployment":
            rolling = workload["spec"].get("strategy", {}).get("rollingUpdate", {})
            if workload["spec"].get("strategy", {}).get("type", "RollingUpdate") != "RollingUpdate":
                violations.append(Violation(rule, target, "strategy is not RollingUpdate"))
            if rolling.get("maxUnavailable") != 0 or not rolling.get("maxSurge"):
                violations.append(
                    Violation(
                        rule, target, "rolling update must use maxUnavailable 0 and maxSurge >= 1"
                    )
                )
        update_type = workload["spec"].get("updateStrategy", {}).get("type", "RollingUpdate")
        if workload["kind"] == "StatefulSet" and update_type != "RollingUpdate":
            violations.append(Violation(rule, target, "updateStrategy is not RollingUpdate"))
    return violations


def check_disruption_budgets(manifests: Manifests) -> list[Violation]:
    """Every workload except Jobs has a PodDisruptionBudget that selects its pods
    and allows at least one eviction."""
    rule = "disruption-budget"
    violations: list[Violation] = []
    budgets = manifests.of_kind("PodDisruptionBudget")
    for workload in manifests.of_kind("Deployment", "StatefulSet"):
        namespace = workload["metadata"]["namespace"]
        covering = [
            pdb
            for pdb in budgets
            if pdb["metadata"]["namespace"] == namespace
            and selector_matches(pdb["spec"]["selector"], pod_labels(workload))
        ]
        if not covering:
            violations.append(
                Violation(rule, ref(workload), "no PodDisruptionBudget selects its pods")
            )
        for pdb in covering:
            # minAvailable equal to the replica count, or maxUnavailable 0, blocks
            # every node drain; maxUnavailable >= 1 never does.
            max_unavailable = pdb["spec"].get("maxUnavailable")
            if max_unavailable is None or max_unavailable == 0:
                violations.append(
                    Violation(
                        rule, ref(pdb), "set maxUnavailable >= 1 so that node drains can proceed"
                    )
                )
    return violations


def check_autoscaling(manifests: Manifests) -> list[Violation]:
    """Only the auth plane has a HorizontalPodAutoscaler."""
    rule = "autoscaling"
    violations: list[Violation] = []
    for hpa in manifests.of_kind("HorizontalPodAutoscaler"):
        target_ref = hpa["spec"]["scaleTargetRef"]
        workload = manifests.get(
            target_ref["kind"], hpa["metadata"]["namespace"], target_ref["name"]
        )
        if workload is None:
            violations.append(
                Violation(
                    rule,
                    ref(hpa),
                    f"scaleTargetRef {target_ref['kind']} {target_ref['name']} not found",
                )
            )
            continue
        if serve_planes(workload) != ("auth",):
            planes = ", ".join(serve_planes(workload)) or "none"
            violations.append(
                Violation(
                    rule, ref(hpa), f"scales a workload serving {planes}; only auth autoscales"
                )
            )
    return violations


# --- Secrets and configuration ------------------------------------------------------


def _secret_names(workload: dict[str, Any]) -> set[str]:
    names = {
        volume["secret"]["secretName"]
        for volume in pod_spec(workload).get("volumes", [])
        if "secret" in volume
    }
    for volume in pod_spec(workload).get("volumes", []):
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    for item in containers(workload):
        for entry in item.get("env", []):
            secret_ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if secret_ref:
                names.add(secret_ref["name"])
        for source in item.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    return names


def check_secret_isolation(manifests: Manifests) -> list[Violation]:
    """No Secret is part of the manifests, and each workload mounts only the
    Secrets of the planes it serves (the migration Job only its own)."""
    rule = "secret-isolation"
    violations: list[Violation] = [
        Violation(rule, ref(secret), "a Secret in the manifests would put credentials in git")
        for secret in manifests.of_kind("Secret")
    ]
    for workload in manifests.workloads():
        planes = serve_planes(workload)
        if planes:
            allowed = {
                f"appliance-{plane}-{suffix}"
                for plane in planes
                for suffix in ("database", "master-secret")
            }
        else:
            allowed = {"appliance-migrate-database", "appliance-role-passwords"}
        for name in sorted(_secret_names(workload) - allowed):
            violations.append(
                Violation(rule, ref(workload), f"uses Secret {name}, which is not one of its own")
            )
    return violations


def mounted_secret(
    path: str, mounts: dict[str, str], volumes: dict[str, dict[str, Any]]
) -> str | None:
    """Return the name of the Secret whose volume is mounted above path, if any."""
    for mount_path, volume_name in mounts.items():
        volume = volumes.get(volume_name, {})
        if path.startswith(mount_path.rstrip("/") + "/") and "secret" in volume:
            return str(volume["secret"]["secretName"])
    return None


def check_plane_configuration(manifests: Manifests) -> list[Violation]:
    """Each serving workload gets, for every plane it serves, a DSN file and a
    master secret file on mounted Secrets, and a pool budget. It listens on the
    container port, and a pod serving break-glass keeps its data on a
    PersistentVolumeClaim."""
    rule = "plane-configuration"
    violations: list[Violation] = []
    for workload in manifests.serving_workloads():
        target = ref(workload)
        spec = pod_spec(workload)
        item = spec["containers"][0]
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        claims = {
            claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])
        }
        mounts = {mount["mountPath"]: mount["name"] for mount in item.get("volumeMounts", [])}

        for plane in serve_planes(workload):
            upper = plane.upper()
            for variable, secret in (
                (f"APPLIANCE_{upper}_DATABASE_URL_FILE", f"appliance-{plane}-database"),
                (f"APPLIANCE_{upper}_MASTER_SECRET_FILE", f"appliance-{plane}-master-secret"),
            ):
                value = env_value(item, variable)
                if value is None:
                    violations.append(Violation(rule, target, f"{variable} is not set"))
                elif mounted_secret(value, mounts, volumes) != secret:
                    violations.append(
                        Violation(
                            rule, target, f"{variable}={value} is not a file of Secret {secret}"
                        )
                    )
            for suffix in ("POOL_MIN", "POOL_MAX", "POOL_ACQUIRE_TIMEOUT"):
                if env_value(item, f"APPLIANCE_{upper}_{suffix}") is None:
                    violations.append(
                        Violation(rule, target, f"APPLIANCE_{upper}_{suffix} is not set")
                    )

        public_url = env_value(item, "APPLIANCE_PUBLIC_URL") or ""
        if not public_url.startswith("https://"):
            violations.append(
                Violation(rule, target, f"APPLIANCE_PUBLIC_URL {public_url!r} is not an https URL")
            )
        ports = {port["containerPort"] for port in item.get("ports", [])}
        if (
            env_value(item, "APPLIANCE_HOST") != "0.0.0.0"  # noqa: S104 (expected, not bound)
            or env_value(item, "APPLIANCE_PORT") != str(APP_PORT)
            or APP_PORT not in ports
        ):
            violations.append(
                Violation(
                    rule, target, f"does not listen on 0.0.0.0:{APP_PORT} with that container port"
                )
            )

        if "breakglass" in serve_planes(workload):
            data_dir = env_value(item, "APPLIANCE_DATA_DIR")
            if data_dir is None or mounts.get(data_dir) not in claims:
                violations.append(
                    Violation(rule, target, "APPLIANCE_DATA_DIR is not on a PersistentVolumeClaim")
                )
    return violations


def peak_connections(manifests: Manifests) -> dict[str, int]:
    """Return, per plane, the most PostgreSQL connections its pools can open at
    once: pods at the replica maximum plus rollout surge, times POOL_MAX."""
    autoscaled = {
        (hpa["metadata"]["namespace"], hpa["spec"]["scaleTargetRef"]["name"]): hpa["spec"][
            "maxReplicas"
        ]
        for hpa in manifests.of_kind("HorizontalPodAutoscaler")
    }
    peak = dict.fromkeys(PLANES, 0)
    for workload in manifests.serving_workloads():
        key = (workload["metadata"]["namespace"], workload["metadata"]["name"])
        pods = autoscaled.get(key, workload["spec"].get("replicas", 1))
        if workload["kind"] == "Deployment":
            pods += int(
                workload["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1)
            )
        item = pod_spec(workload)["containers"][0]
        for plane in serve_planes(workload):
            pool_max = env_value(item, f"APPLIANCE_{plane.upper()}_POOL_MAX")
            if pool_max is None:
                raise ValueError(f"{ref(workload)} does not set APPLIANCE_{plane.upper()}_POOL_MAX")
            peak[plane] += pods * int(pool_max)
    return peak
