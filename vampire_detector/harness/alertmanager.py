"""A real Alertmanager on loopback, with the course's routing, and the few calls we make to it.

Introduced in Chapter 13.

The release chapter and the integration test run the project's own routing
(``deploy/alertmanager/alertmanager.yml``) in a real Alertmanager (Debian and Ubuntu package
``prometheus-alertmanager``, whose binary is ``prometheus-alertmanager``; elsewhere it is
called ``alertmanager``). As ``harness.prometheus`` cuts the rules' ``for:``, this harness cuts
the routes' waits to a second, so that a notification leaves within seconds rather than
minutes; the tree, the matchers and the receivers are untouched. The webhook receivers' URLs
are pointed at local ones (the rollback receiver, typically), and clustering is switched off,
so that nothing listens beyond the one loopback port.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import httpx2 as httpx
import yaml

from vampire_detector.harness.launch import HOST, free_port, running_process
from vampire_detector.paths import deploy_dir

INSTALL_HINT = "install Alertmanager and amtool: apt-get install prometheus-alertmanager"
NOWHERE = f"http://{HOST}:9/unrouted"  # the discard port: a receiver left unconfigured
TIMINGS = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1m"}


def find_alertmanager() -> str | None:
    """The Alertmanager binary: Debian's name first, then upstream's."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def find_amtool() -> str | None:
    return shutil.which("amtool")


def shipped_config() -> Path:
    """The routing the course ships (``deploy/alertmanager/alertmanager.yml`` of the clone)."""
    return deploy_dir() / "alertmanager" / "alertmanager.yml"


def _fast(route: dict) -> None:
    for key, value in TIMINGS.items():
        if key in route or key in ("group_wait", "group_interval"):
            route[key] = value
    for child in route.get("routes", []):
        _fast(child)


def write_config(folder: Path, receivers: Mapping[str, str],
                 config: Path | None = None) -> Path:
    """The shipped configuration with every route's waits cut (``TIMINGS``) and each webhook
    receiver's URL replaced: ``receivers`` maps a receiver's name to its URL; the others point
    at a closed local port."""
    settings = yaml.safe_load((config or shipped_config()).read_text())
    _fast(settings["route"])
    names = {receiver["name"] for receiver in settings["receivers"]}
    if unknown := set(receivers) - names:
        raise ValueError(f"no receiver named {sorted(unknown)} in the configuration: "
                         f"{sorted(names)}")
    for receiver in settings["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = receivers.get(receiver["name"], NOWHERE)
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


@contextlib.contextmanager
def running_alertmanager(folder: str | Path, receivers: Mapping[str, str],
                         config: Path | None = None,
                         timeout_s: float = 60.0) -> Iterator[Alertmanager]:
    """Run Alertmanager with its state in ``folder`` and the routing of ``config`` (default:
    the shipped one), its webhooks pointed at ``receivers``; always stop it."""
    binary = find_alertmanager()
    if binary is None:
        raise FileNotFoundError(f"no `prometheus-alertmanager` or `alertmanager` on PATH: "
                                f"{INSTALL_HINT}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder, receivers, config)
    url = f"http://{HOST}:{free_port()}"
    command = [binary, f"--config.file={path}", f"--storage.path={folder / 'data'}",
               f"--web.listen-address={url.removeprefix('http://')}",
               "--cluster.listen-address=",  # no gossip port: a single, loopback-only instance
               "--log.level=warn"]
    with (open(folder / "alertmanager.log", "w") as log,
          running_process(command, url, ready_path="/-/ready", timeout_s=timeout_s,
                          stdout=subprocess.DEVNULL, stderr=log),
          httpx.Client(base_url=url, timeout=10, trust_env=False) as client):
        yield Alertmanager(url, client, path)


def firing_alert(labels: Mapping[str, str], annotations: Mapping[str, str] | None = None,
                 generator: str = "http://prometheus.invalid/graph") -> dict:
    """An alert as Prometheus posts it while a rule fires: labels, annotations, a start."""
    return {"labels": dict(labels), "annotations": dict(annotations or {}),
            "startsAt": datetime.now(timezone.utc).isoformat(), "generatorURL": generator}


class Alertmanager:
    """The parts of Alertmanager's v2 API that Prometheus and the chapter use."""

    def __init__(self, url: str, client: httpx.Client, config: Path):
        self.url, self.client, self.config = url, client, config

    def post(self, alerts: Sequence[Mapping]) -> None:
        """Send alerts as Prometheus does (``POST /api/v2/alerts``)."""
        response = self.client.post("/api/v2/alerts", json=list(alerts))
        if response.status_code != 200:
            raise RuntimeError(f"Alertmanager refused the alerts ({response.status_code}): "
                               f"{response.text}")

    def alerts(self) -> list[dict]:
        """The alerts Alertmanager holds, with the receivers each was routed to."""
        return self.client.get("/api/v2/alerts").json()


def amtool_routes(config: Path, labels: Mapping[str, str] | None = None) -> str:
    """``amtool config routes`` (the tree) or, given ``labels``, ``routes test`` (receivers)."""
    program = find_amtool()
    if program is None:
        raise FileNotFoundError(f"no `amtool` on PATH: {INSTALL_HINT}")
    command = [program, "config", "routes", f"--config.file={config}"]
    if labels is not None:
        command[3:3] = ["test"]
        command += [f"{key}={value}" for key, value in labels.items()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout.strip()
