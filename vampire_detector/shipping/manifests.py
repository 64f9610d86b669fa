"""Kubernetes manifests read offline: strict schema validation and the facts policies look at.

Introduced in Chapter 9.

kubernetes-validate checks each manifest against the API schemas it bundles (strict: unknown
fields are errors); the helpers below pull out what a reviewer checks next: probes, ports,
images, resources, security context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

K8S_VERSION = "1.35.0"
Manifest = dict[str, Any]


def documents(path: Path) -> list[Manifest]:
    """Every YAML document in ``path`` (``---`` separates them), empty ones skipped."""
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except yaml.YAMLError as error:
        raise ValueError(f"{path.name} is not valid YAML: {error}") from error


def strict_errors(doc: Manifest) -> str | None:
    """kubernetes-validate's complaint about one manifest in strict mode, or None."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
        where = ".".join(str(p) for p in getattr(e, "path", []) or [])
        message = getattr(e, "message", str(e))
        return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {where} {message}"
    return None


def pod_spec(deployment: Manifest) -> Manifest:
    return ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}


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


# Kubernetes' quantity suffixes: binary (Ki, Mi, ...) and decimal (k, M, ...), and milli.
QUANTITY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
                     "Ei": 2**60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                     "P": 10**15, "E": 10**18, "m": 10**-3}


def memory_bytes(quantity: str | int | float | None) -> float | None:
    """A Kubernetes memory quantity ("768Mi", "1G", 1.5e9) in bytes."""
    if quantity is None:
        return None
    text = str(quantity)
    for suffix in sorted(QUANTITY_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * QUANTITY_SUFFIXES[suffix]
    return float(text)


def image_is_pinned(image: str) -> bool:
    """A digest, or a tag that is not ``latest``: the same manifest always runs the same code."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def probe_path(container: Manifest, probe: str) -> tuple[str | None, int | None]:
    """The path and the resolved container port of one HTTP probe."""
    http = (container.get(probe) or {}).get("httpGet") or {}
    return http.get("path"), container_port(container, http.get("port"))


def runs_as_non_root(deployment: Manifest, container: Manifest) -> bool:
    pod = (pod_spec(deployment).get("securityContext") or {}).get("runAsNonRoot")
    own = (container.get("securityContext") or {}).get("runAsNonRoot")
    return own is True or (pod is True and own is not False)


def cpu_target(spec: Manifest) -> int | None:
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = resource.get("target") or {}
            if target.get("type") == "Utilization":
                return target.get("averageUtilization")
    return None


def find(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The first manifest of ``kind`` (and ``name``, if given)."""
    found = [d for d in docs if d.get("kind") == kind
             and (name is None or d.get("metadata", {}).get("name") == name)]
    if not found:
        raise ValueError(f"no {kind}{f' named {name}' if name else ''} in the manifests")
    return found[0]


def the_container(deployment: Manifest) -> Manifest:
    """The first container of a Deployment's pod template."""
    containers = pod_spec(deployment).get("containers") or []
    if not containers:
        raise ValueError("the Deployment's pod template has no container")
    return containers[0]
