"""A real Prometheus server on loopback, and the few questions we ask its HTTP API.

Introduced in Chapter 10.

The chapter, the capstone and the integration test all run the project's own alert rules in a
real ``prometheus`` binary (Debian and Ubuntu package ``prometheus``). To see an alert fire in
seconds rather than minutes, the server scrapes and evaluates every second and the rules'
``for:`` durations are cut to one second; the expressions themselves are untouched.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx2 as httpx
import yaml

from vampire_detector.harness.launch import HOST, free_port, running_process
from vampire_detector.paths import deploy_dir

INSTALL_HINT = "install the Prometheus server: apt-get install prometheus"
T = TypeVar("T")


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def shipped_rules() -> Path:
    """The alert rules the course ships (``deploy/prometheus/alerts.yml`` of the clone)."""
    return deploy_dir() / "prometheus" / "alerts.yml"


def write_config(folder: Path, target: str, rules: Path | None = None,
                 interval: str = "1s", alertmanager: str | None = None) -> Path:
    """A configuration scraping ``target`` (``host:port``) with ``rules``, alerts held 1 s.

    ``rules`` defaults to the shipped alert rules. With ``alertmanager`` (its URL), firing
    alerts are sent there, as in production.
    """
    groups = yaml.safe_load((rules or shipped_rules()).read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "1s"
    (folder / "alerts.yml").write_text(yaml.safe_dump(groups, sort_keys=False))
    config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
              "rule_files": [str(folder / "alerts.yml")],
              "scrape_configs": [{"job_name": "vampire-detector",
                                  "static_configs": [{"targets": [target]}]}]}
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": [alertmanager.removeprefix("http://")]}]}]}
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def running_prometheus(folder: Path, service_url: str, rules: Path | None = None,
                       timeout_s: float = 60.0,
                       alertmanager: str | None = None) -> Iterator[Prometheus]:
    """Run Prometheus scraping ``service_url`` with its data in ``folder``; always stop it.
    With ``alertmanager`` (a URL), it sends its firing alerts there."""
    binary = find_prometheus()
    if binary is None:
        raise FileNotFoundError(f"no `prometheus` on PATH: {INSTALL_HINT}")
    config = write_config(folder, service_url.removeprefix("http://"), rules,
                          alertmanager=alertmanager)
    url = f"http://{HOST}:{free_port()}"
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
               f"--web.listen-address={url.removeprefix('http://')}", "--log.level=warn"]
    with (open(folder / "prometheus.log", "w") as log,
          running_process(command, url, ready_path="/-/ready", timeout_s=timeout_s,
                          stdout=subprocess.DEVNULL, stderr=log),
          httpx.Client(base_url=url, timeout=10, trust_env=False) as client):
        yield Prometheus(client)


class Prometheus:
    """The parts of Prometheus's HTTP API the night watch reads."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def query(self, expr: str) -> list[dict]:
        """An instant PromQL query: one ``{"metric": labels, "value": [t, "v"]}`` per series."""
        body = self.client.get("/api/v1/query", params={"query": expr}).json()
        if body["status"] != "success":
            raise ValueError(f"{expr}: {body.get('error')}")
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The value of a query that yields one series, or None while it yields none."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name: str, state: str = "firing") -> list[dict]:
        alerts = self.client.get("/api/v1/alerts").json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == state]


def eventually(check: Callable[[], T], timeout_s: float = 60.0, every_s: float = 0.5) -> T:
    """Call ``check`` until it returns something truthy, and return that; bounded in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every_s)
    raise TimeoutError(f"not true within {timeout_s:.0f} s")
