"""Who may talk to whom under a set of NetworkPolicies, decided offline, without a cluster.

Introduced in Chapter 12.

A schema says that a NetworkPolicy is well formed, not what it allows. This module answers the
question a reviewer asks ("can a pod with these labels, in that namespace, open a connection to
the detector's port 8000?") by the rules of the Kubernetes API
(https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- a pod is *isolated* for ingress (egress) when at least one policy in its namespace selects it
  and lists that direction in ``policyTypes``; a pod no policy isolates accepts everything;
- an isolated pod accepts a connection when any rule of any policy that selects it admits it
  (policies add up; nothing in them denies);
- a rule without ``from`` (``to``) admits every peer, one without ``ports`` every port;
- in one peer, ``namespaceSelector`` and ``podSelector`` must *both* match; two peers in the
  list are alternatives. A peer with only a ``podSelector`` means pods of the policy's own
  namespace;
- a connection needs the sender's egress and the receiver's ingress both allowed.

``ipBlock`` peers are about addresses outside the cluster and never match a pod here. A policy
without ``metadata.namespace`` is read as in ``namespace`` (what Kustomize sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Policy = dict[str, Any]
NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its labels, its namespace's labels, its named ports."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name -> number

    @property
    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, NAME_LABEL: self.namespace}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector matches ``labels``; ``{}`` matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def policy_types(spec: Mapping[str, Any]) -> set[str]:
    """``policyTypes``, or the API's default: Ingress, and Egress if the spec has egress rules."""
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", *(["Egress"] if "egress" in spec else [])}


def peer_matches(peer: Mapping[str, Any], pod: Pod, policy_namespace: str) -> bool:
    """Whether one entry of ``from``/``to`` covers ``pod``."""
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], pod.all_namespace_labels)
    else:
        in_namespace = pod.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector"), pod.labels)


def port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str,
                 target: Pod) -> bool:
    """Whether a rule's ``ports`` cover ``port``/``protocol`` on ``target`` (names resolved
    against the target's container ports)."""
    ports = list(ports or [])
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        number = target.ports.get(wanted) if isinstance(wanted, str) else wanted
        if number is not None and number <= port <= entry.get("endPort", number):
            return True
    return False


def _namespace(policy: Policy, default: str) -> str:
    return (policy.get("metadata") or {}).get("namespace") or default


def direction_allowed(policies: Iterable[Policy], direction: str, pod: Pod, peer: Pod,
                      port: int, protocol: str, target: Pod, default_namespace: str) -> bool:
    """Whether ``pod``'s policies let ``peer`` in (``Ingress``) or let ``pod`` reach ``peer``
    (``Egress``), on ``port`` of ``target``."""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolated = False
    for policy in policies:
        if policy.get("kind") != "NetworkPolicy":
            continue
        spec, namespace = policy.get("spec") or {}, _namespace(policy, default_namespace)
        if namespace != pod.namespace or not selects(spec.get("podSelector"), pod.labels):
            continue
        if direction not in policy_types(spec):
            continue
        isolated = True
        for rule in spec.get(rules_key) or []:
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(p, peer, namespace) for p in peers):
                continue
            if port_matches(rule.get("ports"), port, protocol, target):
                return True
    return not isolated


def allowed(policies: Iterable[Policy], source: Pod, target: Pod, port: int,
            protocol: str = "TCP", namespace: str = "default") -> bool:
    """Whether ``source`` may open a connection to ``port`` of ``target``."""
    policies = list(policies)
    return (direction_allowed(policies, "Egress", source, target, port, protocol, target,
                              namespace)
            and direction_allowed(policies, "Ingress", target, source, port, protocol, target,
                                  namespace))
