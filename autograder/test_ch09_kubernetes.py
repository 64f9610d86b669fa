"""Chapter 9 — Kubernetes.

The manifests are checked offline: by kubernetes-validate in strict mode (against the
Kubernetes API schemas it bundles, rejecting unknown fields), and by the policies a reviewer
would apply before letting them near a cluster: probes that ask real endpoints of the app,
ports that line up, pinned images, requests and limits, threads that match the CPU limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from vampire_detector.service.app import create_app

K8S_VERSION = "1.35.0"
Manifest = dict[str, Any]


def documents(path: Path) -> list[Manifest]:
    """Every YAML document in ``path`` (``---`` separates them), empty ones skipped."""
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except yaml.YAMLError as error:
        pytest.fail(f"{path.name} is not valid YAML: {error}", pytrace=False)


def strict_errors(doc: Manifest) -> str | None:
    """kubernetes-validate's complaint about one manifest in strict mode, or None."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
        where = ".".join(str(p) for p in getattr(e, "path", []) or [])
        message = getattr(e, "message", str(e))
        return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {where} {message}"
    return None


def find(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [d for d in docs if d.get("kind") == kind
             and (name is None or d.get("metadata", {}).get("name") == name)]
    assert found, f"no {kind}{f' named {name}' if name else ''} in the file"
    return found[0]


def pod_spec(deployment: Manifest) -> Manifest:
    return ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}


def the_container(deployment: Manifest) -> Manifest:
    containers = pod_spec(deployment).get("containers") or []
    assert containers, "the Deployment's pod template has no container"
    return containers[0]


def container_port(container: Manifest, port: int | str | None) -> int | None:
    """The container port number that ``port`` (a number or a port's name) refers to."""
    for declared in container.get("ports") or []:
        if port in (declared.get("containerPort"), declared.get("name")):
            return declared.get("containerPort")
    return None


def env(container: Manifest) -> dict[str, str]:
    return {e["name"]: str(e.get("value")) for e in container.get("env") or []}


def cpu_cores(quantity: str | int | float | None) -> float | None:
    """A Kubernetes CPU quantity ("2", "1500m", 0.5) in cores."""
    if quantity is None:
        return None
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def image_is_pinned(image: str) -> bool:
    """A digest, or a tag that is not ``latest``: the same manifest always runs the same code."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def app_get_routes() -> set[str]:
    """The GET paths of the detection service (built, not started: no model is loaded)."""
    return {route.path for route in create_app().routes if "GET" in getattr(route, "methods", ())}


def probe_path(container: Manifest, probe: str) -> tuple[str | None, int | None]:
    """The path and the resolved container port of one HTTP probe."""
    http = (container.get(probe) or {}).get("httpGet") or {}
    return http.get("path"), container_port(container, http.get("port"))


def runs_as_non_root(deployment: Manifest, container: Manifest) -> bool:
    pod = (pod_spec(deployment).get("securityContext") or {}).get("runAsNonRoot")
    own = (container.get("securityContext") or {}).get("runAsNonRoot")
    return own is True or (pod is True and own is not False)


# Exercise 9.1 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def night_watch(graded_file) -> list[Manifest]:
    return documents(graded_file("ch09_kubernetes/night-watch.yaml"))


@pytest.fixture(scope="module")
def deployment(night_watch) -> Manifest:
    return find(night_watch, "Deployment", "night-watch")


@pytest.mark.points(2)
def test_manifests_pass_strict_validation(night_watch):
    """9.1 The Service and the Deployment pass kubernetes-validate --strict"""
    errors = [e for e in map(strict_errors, night_watch) if e]
    assert not errors, "kubernetes-validate --strict rejects: " + "; ".join(errors)


@pytest.mark.points(1)
def test_service_selects_the_pods(night_watch, deployment):
    """9.1 The Deployment's selector and the Service's both match the pods' labels"""
    labels = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("labels", {})
    selector = deployment["spec"].get("selector", {}).get("matchLabels", {})
    assert selector and selector.items() <= labels.items(), \
        "the Deployment's selector must match its own pod template's labels"
    service = find(night_watch, "Service", "night-watch")
    assert service["spec"]["selector"].items() <= labels.items(), \
        "the Service selects no pod of this Deployment: compare its selector with the labels"
    assert deployment["spec"].get("replicas", 1) >= 2, "one replica is one crash from an outage"


@pytest.mark.points(2)
def test_probes_ask_the_right_endpoints_on_the_served_port(night_watch, deployment):
    """9.1 Liveness asks /health, readiness /ready, a startup probe exists, all on one port"""
    container = the_container(deployment)
    routes = app_get_routes()
    target = find(night_watch, "Service", "night-watch")["spec"]["ports"][0]["targetPort"]
    served = container_port(container, target)
    assert served is not None, "the Service's targetPort is not a port of the container"
    expected = {"livenessProbe": "/health", "readinessProbe": "/ready"}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        path, port = probe_path(container, probe)
        assert path is not None, f"the container needs an HTTP {probe}"
        assert path in routes, f"the {probe} asks {path}, which the app does not serve"
        assert path == expected.get(probe, path), \
            f"the {probe} asks the wrong one of the app's probe endpoints"
        assert port == served, f"the {probe} asks a port that the Service does not send to"


@pytest.mark.points(2)
def test_resources_and_threads(deployment):
    """9.1 CPU and memory requests and limits are set, and the threads match the CPU limit"""
    container = the_container(deployment)
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            assert (resources.get(part) or {}).get(resource) is not None, \
                f"set resources.{part}.{resource}"
    limit = cpu_cores(resources["limits"]["cpu"])
    assert limit == 2, "the night shift's container gets two CPUs"
    assert cpu_cores(resources["requests"]["cpu"]) <= limit, "a request above its limit"
    variables = env(container)
    for name in ("VAMPIRE_THREADS", "OMP_NUM_THREADS"):
        assert variables.get(name) == str(int(limit)), \
            f"{name} should give the model as many threads as the container has CPUs"


@pytest.mark.points(1)
def test_pinned_image_and_non_root(deployment):
    """9.1 The image is the night shift's, pinned, and the container cannot run as root"""
    container = the_container(deployment)
    image = container.get("image", "")
    assert image.startswith("ghcr.io/castle-dracula/night-shift"), "not the night-shift image"
    assert image_is_pinned(image), "pin the image to a version, never a moving tag"
    assert "@sha256:" in image or image.rpartition(":")[2] == "0.1.0", \
        "the night shift runs the image's version 0.1.0"
    assert runs_as_non_root(deployment, container), "set runAsNonRoot so root is refused"
    assert (container.get("securityContext") or {}).get("allowPrivilegeEscalation") is False, \
        "forbid privilege escalation in the container's securityContext"


# Exercise 9.2 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hpa(graded_file) -> Manifest:
    docs = documents(graded_file("ch09_kubernetes/hpa.yaml"))
    return find(docs, "HorizontalPodAutoscaler")


def cpu_target(spec: Manifest) -> int | None:
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = resource.get("target") or {}
            if target.get("type") == "Utilization":
                return target.get("averageUtilization")
    return None


@pytest.mark.points(1)
def test_hpa_passes_strict_validation(hpa):
    """9.2 The HorizontalPodAutoscaler is autoscaling/v2 and passes strict validation"""
    assert hpa.get("apiVersion") == "autoscaling/v2", "use the autoscaling/v2 API"
    error = strict_errors(hpa)
    assert error is None, f"kubernetes-validate --strict rejects: {error}"


@pytest.mark.points(2)
def test_hpa_scales_the_night_watch_on_cpu(hpa):
    """9.2 It scales the night-watch Deployment between 2 and 12 replicas at 60% CPU"""
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    assert (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) == \
        ("apps/v1", "Deployment", "night-watch"), "the autoscaler targets the wrong workload"
    assert (spec.get("minReplicas"), spec.get("maxReplicas")) == (2, 12), \
        "check the replica bounds"
    assert cpu_target(spec) == 60, "scale on average CPU utilisation at the asked target"


@pytest.mark.points(1)
def test_hpa_waits_out_a_lull(hpa):
    """9.2 A lull shorter than five minutes never scales the night watch down"""
    down = ((hpa.get("spec") or {}).get("behavior") or {}).get("scaleDown") or {}
    assert (down.get("stabilizationWindowSeconds") or 0) >= 300, \
        "the scale-down stabilization window is too short"
