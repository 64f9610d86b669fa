"""Chapter 9 — Kubernetes.

The manifests are checked offline: by kubernetes-validate in strict mode (against the
Kubernetes API schemas it bundles, rejecting unknown fields), and by the policies a reviewer
would apply before letting them near a cluster: probes that ask real endpoints of the app,
ports that line up, a startup probe patient enough for the model, pinned images, requests and
limits that the API server accepts, threads that match the CPU limit.

Wrong answers these tests catch, each with feedback that names the problem:

- 9.1 ``startup-probe-budget-too-short``: a startup probe that gives up after seconds, so the
  kubelet kills the container while its model is still loading.
- 9.1 ``liveness-on-ready``: liveness asks /ready, so a busy pod is restarted, not skipped.
- 9.1 ``missing-resource-limits``: requests without limits.
- 9.1 ``memory-request-above-limit``: a memory request larger than its limit, which the API
  server refuses.
- 9.1 ``threads-not-matching-limit``: eight threads in a container limited to two CPUs.
- 9.1 ``runs-as-root``: no ``runAsNonRoot``, or a ``runAsUser`` of 0.
- 9.2 ``autoscaling-v1``: the old API, which has no behaviour and no metrics list.
- 9.2 ``window-in-minutes``: a stabilisation window of 5, read as seconds.
- 9.2 ``lull-on-scale-up``: the window under ``scaleUp``, where it slows the response to a
  rush instead of a lull.
- 9.2 ``targets-the-service``: the autoscaler pointed at the Service, which has no replicas.
- 9.2 ``one-replica-minimum``: a floor of one replica, one crash from an outage at night.
"""

from __future__ import annotations

import pytest

from vampire_detector.service.app import get_paths
from vampire_detector.shipping.manifests import (
    Manifest,
    container_port,
    cpu_cores,
    cpu_target,
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

# Exercise 9.1 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def night_watch(graded_file) -> list[Manifest]:
    return documents(graded_file("ch09_kubernetes/night-watch.yaml"))


@pytest.fixture(scope="module")
def deployment(night_watch) -> Manifest:
    return find(night_watch, "Deployment", "night-watch")


@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_manifests_pass_strict_validation(night_watch):
    """9.1 The Service and the Deployment pass kubernetes-validate --strict"""
    errors = [e for e in map(strict_errors, night_watch) if e]
    assert not errors, "kubernetes-validate --strict rejects: " + "; ".join(errors)


@pytest.mark.exercise("9.1")
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


@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_probes_ask_the_right_endpoints_on_the_served_port(night_watch, deployment):
    """9.1 Liveness asks /health, readiness /ready, a startup probe exists, all on one port"""
    container = the_container(deployment)
    routes = get_paths()
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


# The longest the night shift's model may take to load and warm on a cold node, in seconds.
MODEL_LOAD_S = 120
# Kubernetes' defaults for a probe's timing fields.
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "failureThreshold": 3}


@pytest.mark.exercise("9.1")
@pytest.mark.points(1)
def test_startup_probe_waits_for_the_model(deployment):
    """9.1 The startup probe gives the model two minutes to load before the kubelet gives up"""
    startup = the_container(deployment).get("startupProbe") or {}
    assert startup, "the container needs a startupProbe for the model load"
    timing = {field: startup.get(field, default) for field, default in PROBE_DEFAULTS.items()}
    budget = (timing["initialDelaySeconds"]
              + timing["periodSeconds"] * timing["failureThreshold"])
    assert budget >= MODEL_LOAD_S, (
        f"the startup probe gives up after {budget} s (initialDelaySeconds + periodSeconds x "
        "failureThreshold), and the kubelet then kills a container whose model is still "
        "loading: the model may take two minutes")


@pytest.mark.exercise("9.1")
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
    assert cpu_cores(resources["requests"]["cpu"]) <= limit, \
        "a CPU request above its limit: the API server refuses the pod"
    assert memory_bytes(resources["requests"]["memory"]) <= memory_bytes(
        resources["limits"]["memory"]), \
        "a memory request above its limit: the API server refuses the pod"
    variables = env(container)
    for name in ("VAMPIRE_THREADS", "OMP_NUM_THREADS"):
        assert variables.get(name) == str(int(limit)), \
            f"{name} should give the model as many threads as the container has CPUs"


@pytest.mark.exercise("9.1")
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
    users = [(context or {}).get("runAsUser") for context in
             (pod_spec(deployment).get("securityContext"), container.get("securityContext"))]
    assert 0 not in users, "runAsUser 0 is root: the kubelet refuses to start it with runAsNonRoot"
    assert (container.get("securityContext") or {}).get("allowPrivilegeEscalation") is False, \
        "forbid privilege escalation in the container's securityContext"


# Exercise 9.2 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hpa(graded_file) -> Manifest:
    docs = documents(graded_file("ch09_kubernetes/hpa.yaml"))
    return find(docs, "HorizontalPodAutoscaler")


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_hpa_passes_strict_validation(hpa):
    """9.2 The HorizontalPodAutoscaler is autoscaling/v2 and passes strict validation"""
    assert hpa.get("apiVersion") == "autoscaling/v2", \
        "use the autoscaling/v2 API: autoscaling/v1 has no metrics list and no behavior"
    error = strict_errors(hpa)
    assert error is None, f"kubernetes-validate --strict rejects: {error}"


@pytest.mark.exercise("9.2")
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


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_hpa_waits_out_a_lull(hpa):
    """9.2 A lull shorter than five minutes never scales the night watch down"""
    down = ((hpa.get("spec") or {}).get("behavior") or {}).get("scaleDown") or {}
    assert (down.get("stabilizationWindowSeconds") or 0) >= 300, \
        "the scale-down stabilization window is too short (it counts seconds)"
