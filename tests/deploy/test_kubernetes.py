"""The Kubernetes manifests: strict schema validation, offline, and the deployment policies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from vampire_detector.paths import course_root
from vampire_detector.service.app import create_app, get_paths
from vampire_detector.shipping.dockerfile import exec_form, final_stage, instructions, option
from vampire_detector.shipping.manifests import (
    Manifest,
    container_port,
    cpu_cores,
    documents,
    env,
    find,
    image_is_pinned,
    memory_bytes,
    pod_spec,
    probe_path,
    runs_as_non_root,
    strict_errors,
    the_container,
)

ROOT = course_root()
K8S = ROOT / "deploy" / "k8s"
BASE, GPU = K8S / "base", K8S / "overlays" / "gpu"
GATEWAY, KEDA = K8S / "overlays" / "gateway", K8S / "overlays" / "keda"
CANARY = K8S / "overlays" / "canary"
TRACK = "app.kubernetes.io/track"
# Kinds from CustomResourceDefinitions (Gateway API, KEDA): kubernetes-validate has no schema
# for them, so their tests below check what matters about them instead.
CUSTOM_KINDS = {"HTTPRoute", "ScaledObject"}
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"
                   and not {doc["kind"] for doc in documents(p)} & CUSTOM_KINDS)
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())


def strategic_merge(base: Any, patch: Any) -> Any:
    """``patch`` over ``base`` as kustomize merges the fields these manifests use.

    Maps merge key by key; lists of named items (containers, env, volumes) merge by name;
    any other list, and any scalar, is replaced.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    named = isinstance(base, list) and isinstance(patch, list) and all(
        isinstance(item, dict) and "name" in item for item in [*base, *patch])
    if named and base:
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = strategic_merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return copy.deepcopy(patch)


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in documents(BASE / name)]


@pytest.fixture(scope="module")
def gpu_deployment(base) -> Manifest:
    patch = documents(GPU / "deployment-gpu.yaml")[0]
    return strategic_merge(find(base, "Deployment", "vampire-detector"), patch)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_passes_strict_validation(path):
    """Every manifest, the GPU patch included, passes kubernetes-validate --strict."""
    for doc in documents(path):
        assert strict_errors(doc) is None, strict_errors(doc)


def test_strict_validation_bites(base):
    """A misspelt field is an error in strict mode, not a silently ignored line."""
    deployment = copy.deepcopy(find(base, "Deployment"))
    the_container(deployment)["readinesProbe"] = the_container(deployment).pop("readinessProbe")
    assert strict_errors(deployment) is not None


@pytest.mark.parametrize("folder", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_kustomizations_list_existing_files(folder):
    """Every resource and patch file a kustomization names exists."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    names = kustomization.get("resources", []) + [p["path"] for p in
                                                   kustomization.get("patches", []) if "path" in p]
    assert names and all((folder / name).exists() for name in names)


def test_probes_ask_real_endpoints_on_the_served_port(base):
    """Liveness asks /health, readiness and startup /ready, on the port uvicorn listens on."""
    container = the_container(find(base, "Deployment"))
    routes = get_paths()
    command = exec_form([i.args for i in final_stage(instructions(
        ROOT / "deploy/docker/Dockerfile")) if i.keyword == "CMD"][-1])
    served = int(option(command, "--port"))
    for probe, path in [("livenessProbe", "/health"), ("readinessProbe", "/ready"),
                        ("startupProbe", "/ready")]:
        assert probe_path(container, probe) == (path, served), probe
        assert path in routes
    target = find(base, "Service")["spec"]["ports"][0]["targetPort"]
    assert container_port(container, target) == served


def test_service_hpa_and_budget_point_at_the_deployment(base):
    """The Service and the PodDisruptionBudget select its pods; the HPA scales it."""
    deployment = find(base, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert find(base, "Service")["spec"]["selector"].items() <= labels.items()
    pdb = find(base, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["minAvailable"] < deployment["spec"]["replicas"]
    hpa = find(base, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_resources_threads_image_and_user(base, gpu_deployment, variant):
    """Requests and limits set, threads = CPU limit, a pinned image, never root."""
    deployment = find(base, "Deployment") if variant == "base" else gpu_deployment
    container = the_container(deployment)
    resources = container["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[part].keys()
    limit = cpu_cores(resources["limits"]["cpu"])
    assert cpu_cores(resources["requests"]["cpu"]) == limit  # Guaranteed QoS: no surprises
    assert env(container)["VAMPIRE_THREADS"] == env(container)["OMP_NUM_THREADS"] == \
        str(int(limit))
    assert image_is_pinned(container["image"])
    assert runs_as_non_root(deployment, container)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_gpu_overlay(gpu_deployment):
    """The GPU variant asks for a whole GPU and may land on (tainted) GPU nodes only."""
    assert strict_errors(gpu_deployment) is None
    container = the_container(gpu_deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    spec = pod_spec(gpu_deployment)
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert env(container)["VAMPIRE_RUNTIME"] == "onnx"  # kept from the base by the merge
    kustomization = yaml.safe_load((GPU / "kustomization.yaml").read_text())
    assert kustomization["images"][0]["newTag"].endswith("-cuda")


# --- Hardening: who may reach the pods, with what identity, using how much ---------------

def test_the_namespace_enforces_the_restricted_pod_security_profile(base):
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    namespace = find(base, "Namespace")
    assert namespace["metadata"]["name"] == kustomization["namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    container = the_container(find(base, "Deployment"))  # what "restricted" demands of it
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod_spec(find(base, "Deployment"))["securityContext"]["seccompProfile"]["type"] \
        == "RuntimeDefault"


def test_pods_run_as_their_own_service_account_without_a_token(base):
    deployment = find(base, "Deployment")
    account = find(base, "ServiceAccount")
    assert pod_spec(deployment)["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(deployment)["automountServiceAccountToken"] is False
    assert not [doc for doc in base if doc["kind"] in {"RoleBinding", "ClusterRoleBinding"}]


def admitted(policy: Manifest, container: Manifest) -> dict[str, list[int]]:
    """Who may connect, by source (its namespace, and pod name if any), to which port numbers."""
    found = {}
    for rule in policy["spec"]["ingress"]:
        ports = [container_port(container, port["port"]) for port in rule["ports"]]
        for source in rule["from"]:
            assert "namespaceSelector" in source, "never from anywhere"
            name = source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            pod = source.get("podSelector", {}).get("matchLabels", {}).get(
                "app.kubernetes.io/name")
            found[f"{name}/{pod}" if pod else name] = ports
    return found


def test_traffic_is_denied_by_default_and_allowed_from_the_gateway_and_prometheus(base):
    """Deny by default; the gateway reaches the service port only, Prometheus the metrics
    port only (where the service serves /metrics: VAMPIRE_METRICS_PORT)."""
    policies = {doc["metadata"]["name"]: doc for doc in base if doc["kind"] == "NetworkPolicy"}
    deny = [doc["spec"] for doc in policies.values() if doc["spec"]["podSelector"] == {}]
    assert deny and set(deny[0]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny[0] and "egress" not in deny[0]
    deployment = find(base, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (allow,) = [doc for doc in policies.values() if doc["spec"]["podSelector"].get(
        "matchLabels", {"-": "-"}).items() <= labels.items()]
    container = the_container(deployment)
    metrics_port = int(env(container)["VAMPIRE_METRICS_PORT"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == metrics_port
    assert admitted(allow, container) == {"ingress-nginx": [8000],
                                          "monitoring/prometheus": [metrics_port]}


def test_keys_come_from_a_secret_and_the_service_can_read_them(base):
    from vampire_detector.service.auth import parse_digests
    from vampire_detector.service.settings import ServiceSettings

    deployment = find(base, "Deployment")
    container = the_container(deployment)
    path = env(container)["VAMPIRE_API_KEYS_FILE"]
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    secret = find(base, "Secret", volume["secret"]["secretName"])
    key = path.removeprefix(mount["mountPath"] + "/")
    assert parse_digests(secret["stringData"][key])  # digests, never the keys themselves
    fields = set(ServiceSettings.model_fields)
    for name in env(container):  # every VAMPIRE_* variable is a real setting
        if name.startswith("VAMPIRE_"):
            assert name.removeprefix("VAMPIRE_").lower() in fields, name
    assert env(container)["VAMPIRE_DOCS"] == "false"


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_disk_is_bounded_and_shutdown_drains(base, gpu_deployment, variant):
    deployment = find(base, "Deployment") if variant == "base" else gpu_deployment
    container = the_container(deployment)
    for part in ("requests", "limits"):
        assert "ephemeral-storage" in container["resources"][part]
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    command = container["args"]
    graceful = int(option(command, "--timeout-graceful-shutdown"))
    assert drain + graceful < pod_spec(deployment)["terminationGracePeriodSeconds"]


def test_the_manifest_runs_the_images_command_with_the_same_limits(base):
    """The args spell out the image's CMD; they must not drift apart."""
    stage = final_stage(instructions(ROOT / "deploy/docker/Dockerfile"))
    image_command = exec_form([i.args for i in stage if i.keyword == "CMD"][-1])
    assert the_container(find(base, "Deployment"))["args"] == image_command


def test_replicas_are_spread_over_nodes(base):
    """Losing a node is not an outage: a hard spread over hostnames, counting the Deployment's
    own pods (its selector), so both replicas never share a node when two nodes exist."""
    deployment = find(base, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (spread,) = pod_spec(deployment)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "DoNotSchedule" and spread["maxSkew"] == 1
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def overlay(folder) -> tuple[dict, list[Manifest]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    own = [doc for name in kustomization["resources"] if not name.startswith("..")
           for doc in documents(folder / name)]
    return kustomization, own


def test_the_gateway_route_exposes_only_the_predictions(base):
    """The HTTPRoute sends the border's host to the Service's port, for the prediction routes
    the app really has, and nothing else: probes and /metrics stay inside the cluster. The
    network policy then admits the gateway's namespace instead of ingress-nginx's."""
    kustomization, own = overlay(GATEWAY)
    route = find(own, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == yaml.safe_load(
        (BASE / "kustomization.yaml").read_text())["namespace"]
    (rule,) = route["spec"]["rules"]
    paths = {match["path"]["value"] for match in rule["matches"]}
    posted = {served.path for served in create_app().routes
              if "POST" in getattr(served, "methods", ())}
    assert paths == posted == {"/predict", "/predict/batch"}
    assert all(match["path"]["type"] == "Exact" for match in rule["matches"])
    service = find(base, "Service")
    (backend,) = rule["backendRefs"]
    assert (backend["name"], backend["port"]) == (service["metadata"]["name"],
                                                  service["spec"]["ports"][0]["port"])
    (parent,) = route["spec"]["parentRefs"]
    patch = documents(GATEWAY / kustomization["patches"][0]["path"])[0]
    policy = strategic_merge(find(base, "NetworkPolicy", "vampire-detector"), patch)
    assert strict_errors(policy) is None
    sources = admitted(policy, the_container(find(base, "Deployment")))
    assert sources == {parent["namespace"]: [8000], "monitoring/prometheus": [9100]}


def test_keda_replaces_the_cpu_autoscaler_with_a_query_prometheus_accepts(base, tmp_path):
    """KEDA's ScaledObject drives the Deployment on the predictions' request rate, within the
    base HPA's bounds; the base HPA is deleted (two autoscalers would fight); and promtool parses
    the query, on metric and label names the service really exports."""
    import shutil
    import subprocess

    from tests.programs import require
    from vampire_detector.harness.prometheus import INSTALL_HINT
    from vampire_detector.service.metrics import HTTP_LABELS

    kustomization, own = overlay(KEDA)
    (deleted,) = [yaml.safe_load(p["patch"]) for p in kustomization["patches"]]
    hpa = find(base, "HorizontalPodAutoscaler")
    assert deleted["$patch"] == "delete"
    assert (deleted["kind"], deleted["metadata"]["name"]) == ("HorizontalPodAutoscaler",
                                                             hpa["metadata"]["name"])
    scaled = find(own, "ScaledObject")["spec"]
    assert scaled["scaleTargetRef"]["name"] == find(base, "Deployment")["metadata"]["name"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    (trigger,) = scaled["triggers"]
    query = trigger["metadata"]["query"]
    assert trigger["type"] == "prometheus" and float(trigger["metadata"]["threshold"]) > 0
    assert "vampire_http_requests_total" in query and "route" in HTTP_LABELS
    rules = tmp_path / "query.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "keda", "rules": [
        {"record": "keda:query", "expr": query}]}]}))
    promtool = require(shutil.which("promtool"), INSTALL_HINT)
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
def test_the_canary_splits_the_route_90_10_between_two_services(base):
    """The canary overlay builds on the gateway overlay (the champion, its pods the stable
    track) and adds the challenger (its own image tag, the canary track, one replica); the
    route keeps the gateway's paths and sends 90 of each 100 travellers to the champion's
    Service and 10 to the challenger's."""
    kustomization = yaml.safe_load((CANARY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["stable", "challenger"]
    stable = yaml.safe_load((CANARY / "stable" / "kustomization.yaml").read_text())
    assert stable["resources"] == ["../../gateway"]
    added = {(p["target"]["kind"], op["path"], op["value"]) for p in stable["patches"]
             for op in yaml.safe_load(p["patch"])}
    stable_label = TRACK.replace("/", "~1")
    assert {("Deployment", f"/spec/selector/matchLabels/{stable_label}", "stable"),
            ("Deployment", f"/spec/template/metadata/labels/{stable_label}", "stable"),
            ("Service", f"/spec/selector/{stable_label}", "stable")} <= added
    challenger = yaml.safe_load((CANARY / "challenger" / "kustomization.yaml").read_text())
    assert challenger["resources"] == ["../../../base"]
    assert challenger["nameSuffix"] == "-challenger"
    (labels,) = challenger["labels"]
    assert labels == {"pairs": {TRACK: "canary"}, "includeSelectors": True}
    (image,) = challenger["images"]
    champion_image = the_container(find(base, "Deployment"))["image"]
    assert image["name"] == champion_image.rsplit(":", 1)[0]
    assert image["newTag"] != champion_image.rsplit(":", 1)[1]
    kept = {"Deployment", "Service"}
    deleted = {yaml.safe_load(p["patch"])["kind"] for p in challenger["patches"]}
    assert deleted == {doc["kind"] for doc in base} - kept, "the challenger shares the rest"
    (patch,) = [documents(CANARY / p["path"])[0] for p in kustomization["patches"]]
    (_, gateway_route) = overlay(GATEWAY)
    (gateway_rule,) = find(gateway_route, "HTTPRoute")["spec"]["rules"]
    (rule,) = patch["spec"]["rules"]
    assert rule["matches"] == gateway_rule["matches"]
    assert rule["timeouts"] == gateway_rule["timeouts"]
    service = find(base, "Service")
    weights = {ref["name"]: (ref["port"], ref["weight"]) for ref in rule["backendRefs"]}
    port = service["spec"]["ports"][0]["port"]
    name = service["metadata"]["name"]
    assert weights == {name: (port, 90), f"{name}{challenger['nameSuffix']}": (port, 10)}


def test_the_rendered_canary_keeps_the_tracks_apart():
    """kubectl kustomize renders the overlay: the challenger's Deployment passes strict
    validation, runs the new tag, and each Service and Deployment selects its own track only
    (each selector's labels are in its own pods' labels and not in the other track's)."""
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("not installed: kubectl (it renders the overlay with kustomize)")
    rendered = subprocess.run([kubectl, "kustomize", str(CANARY)], capture_output=True,
                              text=True, timeout=120, check=False)
    assert rendered.returncode == 0, rendered.stderr
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(names) == len(set(names)), "an object is made twice"
    champion = find(docs, "Deployment", "vampire-detector")
    challenger = find(docs, "Deployment", "vampire-detector-challenger")
    for deployment in (champion, challenger):
        assert strict_errors(deployment) is None, strict_errors(deployment)
    assert challenger["spec"]["replicas"] == 1
    assert the_container(challenger)["image"] != the_container(champion)["image"]
    assert pod_spec(challenger)["serviceAccountName"] == pod_spec(champion)["serviceAccountName"]
    pods = {"stable": champion["spec"]["template"]["metadata"]["labels"],
            "canary": challenger["spec"]["template"]["metadata"]["labels"]}
    assert {track: labels[TRACK] for track, labels in pods.items()} == {
        "stable": "stable", "canary": "canary"}

    def selects(selector: dict[str, str]) -> set[str]:
        return {track for track, labels in pods.items() if selector.items() <= labels.items()}

    assert selects(champion["spec"]["selector"]["matchLabels"]) == {"stable"}
    assert selects(challenger["spec"]["selector"]["matchLabels"]) == {"canary"}
    assert selects(find(docs, "Service", "vampire-detector")["spec"]["selector"]) == {"stable"}
    assert selects(find(docs, "Service", "vampire-detector-challenger")["spec"]["selector"]) == {
        "canary"}
    policy = find(docs, "NetworkPolicy", "vampire-detector")
    assert selects(policy["spec"]["podSelector"]["matchLabels"]) == {"stable", "canary"}, (
        "the gateway's network policy must guard both tracks")
    route = find(docs, "HTTPRoute")
    assert {ref["name"] for ref in route["spec"]["rules"][0]["backendRefs"]} == {
        "vampire-detector", "vampire-detector-challenger"}


def test_memory_quantities_in_bytes():
    """Binary and decimal suffixes, plain numbers and none at all."""
    assert memory_bytes("768Mi") == 768 * 2**20
    assert memory_bytes("1.5Gi") == 1.5 * 2**30
    assert memory_bytes("1G") == 10**9
    assert memory_bytes(129e6) == 129e6
    assert memory_bytes("2048") == 2048
    assert memory_bytes(None) is None
