"""The NetworkPolicy reader: the API's rules, and what the course's policies allow."""

from __future__ import annotations

import pytest
import yaml

from vampire_detector.shipping.manifests import documents
from vampire_detector.shipping.netpol import Pod, allowed, policy_types, selects

NS = "border-checkpoint"
DETECTOR = Pod(NS, {"app.kubernetes.io/name": "vampire-detector"},
               ports={"http": 8000, "metrics": 9100})
GATEWAY = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
GRAFANA = Pod("monitoring", {"app.kubernetes.io/name": "grafana"})
NEIGHBOUR = Pod(NS, {"app": "renfield-debug"})
STRANGER = Pod("default", {"app.kubernetes.io/name": "prometheus"})


def policy(spec: dict, name: str = "p") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def test_selectors_labels_and_expressions():
    labels = {"app": "detector", "tier": "api"}
    assert selects({}, labels) and selects(None, labels)
    assert selects({"matchLabels": {"app": "detector"}}, labels)
    assert not selects({"matchLabels": {"app": "detector", "tier": "db"}}, labels)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In",
                                          "values": ["api", "web"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "NotIn",
                                              "values": ["api"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)


def test_policy_types_default_as_the_api_does():
    assert policy_types({}) == {"Ingress"}
    assert policy_types({"egress": []}) == {"Ingress", "Egress"}
    assert policy_types({"policyTypes": ["Egress"]}) == {"Egress"}


def test_no_policy_allows_everything_and_an_empty_deny_isolates():
    assert allowed([], STRANGER, DETECTOR, 8000)
    deny = policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    assert not allowed([deny], GATEWAY, DETECTOR, 8000)
    assert allowed([deny], DETECTOR, GATEWAY, 80)  # egress is not isolated by it


def test_a_rule_without_from_admits_everyone_and_policies_add_up():
    deny = policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    open_port = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 8000}]}]})
    assert allowed([deny, open_port], STRANGER, DETECTOR, 8000)
    assert not allowed([deny, open_port], STRANGER, DETECTOR, 9000)
    assert allowed([policy({"podSelector": {}, "ingress": [{}]})], STRANGER, DETECTOR, 1)


def test_namespace_and_pod_selectors_in_one_peer_must_both_match():
    together = policy({"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
         "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}]})
    apart = policy({"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}]})
    assert allowed([together], PROMETHEUS, DETECTOR, 8000)
    assert not allowed([together], GRAFANA, DETECTOR, 8000)
    assert allowed([apart], GRAFANA, DETECTOR, 8000)  # the whole namespace: the classic slip
    assert not allowed([apart], STRANGER, DETECTOR, 8000)  # a podSelector alone: own namespace
    assert allowed([apart], Pod(NS, {"app.kubernetes.io/name": "prometheus"}), DETECTOR, 8000)


def test_named_ports_ranges_and_protocols():
    spec = {"podSelector": {}, "ingress": [{"ports": [{"port": "http"},
                                                      {"port": 9000, "endPort": 9010},
                                                      {"port": 53, "protocol": "UDP"}]}]}
    rules = [policy(spec)]
    assert allowed(rules, STRANGER, DETECTOR, 8000)
    assert allowed(rules, STRANGER, DETECTOR, 9005)
    assert not allowed(rules, STRANGER, DETECTOR, 53)
    assert allowed(rules, STRANGER, DETECTOR, 53, "UDP")


def test_egress_is_checked_on_the_sender():
    deny_out = policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert not allowed([deny_out], DETECTOR, GATEWAY, 443)
    assert allowed([deny_out], GATEWAY, DETECTOR, 8000)


@pytest.fixture(scope="module")
def base_policies(repo_root) -> list[dict]:
    return documents(repo_root / "deploy/k8s/base/networkpolicy.yaml")


@pytest.mark.parametrize(("source", "port", "expected"), [
    (GATEWAY, 8000, True), (GATEWAY, 9100, False), (PROMETHEUS, 9100, True),
    (PROMETHEUS, 8000, False), (GRAFANA, 9100, False), (GRAFANA, 8000, False),
    (NEIGHBOUR, 8000, False), (STRANGER, 8000, False), (GATEWAY, 22, False)])
def test_the_course_policy_admits_the_gateway_and_prometheus_only(base_policies, repo_root,
                                                                   source, port, expected):
    namespace = yaml.safe_load((repo_root / "deploy/k8s/base/kustomization.yaml").read_text())
    assert allowed(base_policies, source, DETECTOR, port,
                   namespace=namespace["namespace"]) is expected


def test_the_course_policy_lets_the_detector_open_no_connection(base_policies):
    assert not allowed(base_policies, DETECTOR, GATEWAY, 443, namespace=NS)
    assert not allowed(base_policies, DETECTOR, Pod("kube-system", {"k8s-app": "kube-dns"}), 53,
                       "UDP", namespace=NS)
