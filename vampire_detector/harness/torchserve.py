"""TorchServe for real: archive VampireNet, write its config, start it, manage it, stop it.

Introduced in Chapter 14.

TorchServe is a Java frontend (HTTP, queues, dynamic batching, worker management) in front of
Python worker processes that run a handler (``vampire_detector.torchserve_handler``). Three
HTTP APIs on three ports: inference (``/ping``, ``/predictions/NAME``), management
(``/models``: register, scale, describe) and metrics (``/metrics``, Prometheus text).

``running_torchserve`` starts it in the foreground in its own process group and always stops
the whole group (the JVM and its Python workers), even when the caller fails. Every port is on
loopback; its logs stay in the run's own folder. Its pid file, its workers' Unix sockets
(``.ts.sock.9000``, the same name in every TorchServe) and the archives it unpacks go into a
short temporary folder of its own (``TMPDIR`` and ``TEMP``), removed when it stops: left in
``/tmp``, two TorchServes at once would take each other's sockets, and every start would leave
its unpacked model behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx

import vampire_detector
from vampire_detector import torchserve_handler
from vampire_detector.harness.launch import HOST, free_port, stop_group
from vampire_detector.weights import weights_path

JAVA_MISSING = ("TorchServe needs a Java runtime (17 or newer) on PATH: install Debian's "
                "openjdk-17-jre-headless, or set JAVA_HOME")


def java_available() -> bool:
    """Whether a ``java`` TorchServe can start is on PATH (or under JAVA_HOME)."""
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


def tool(name: str) -> str:
    """A console script installed beside this Python (``torchserve``, ``torch-model-archiver``)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def archive(store: Path, *, name: str = "vampirenet", arch: str = "vampirenet",
            weights: Path | None = None, version: str = "1.0") -> Path:
    """Pack the weights, their notes and the handler into ``store/NAME.mar``."""
    weights = weights or weights_path(arch)
    store.mkdir(parents=True, exist_ok=True)
    notes = weights.with_suffix(".json")
    extra = ["--extra-files", str(notes)] if notes.exists() else []
    # The archiver gathers the files in TMPDIR/NAME, a fixed path: two archivers of one
    # name at once (test workers, say) would delete each other's, so each gets its own.
    with tempfile.TemporaryDirectory(prefix="mar-") as scratch:
        packed = subprocess.run(
            [tool("torch-model-archiver"), "--model-name", name, "--version", version,
             "--serialized-file", str(weights),
             "--handler", f"{Path(torchserve_handler.__file__).with_suffix('')}:handle",
             *extra, "--export-path", str(store), "--force"],
            capture_output=True, text=True, env={**os.environ, "TMPDIR": scratch})
    if packed.returncode != 0:
        raise RuntimeError("torch-model-archiver failed: "
                           + (packed.stderr or packed.stdout)[-1500:])
    return store / f"{name}.mar"


@dataclass(frozen=True)
class TorchServeConfig:
    """What ``config.properties`` says; batching is TorchServe's own (in the Java frontend)."""

    batch_size: int = 8  # most requests per handler call
    max_batch_delay_ms: int = 5  # how long the frontend waits to fill a batch
    workers: int = 1  # Python worker processes for the model
    threads: int = 1  # torch threads per worker (VAMPIRE_THREADS)
    token_auth: bool = False  # True: TorchServe writes key_file.json and checks Bearer keys
    heap: str = "256m"  # the JVM's maximum heap: it is not small by default

    def __post_init__(self) -> None:
        for field_name in ("batch_size", "workers", "threads"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be at least 1")
        if self.max_batch_delay_ms < 0:
            raise ValueError("max_batch_delay_ms must not be negative")


@dataclass(frozen=True)
class Ports:
    inference: int
    management: int
    metrics: int
    # TorchServe also opens two gRPC ports, 7070 and 7071 unless told otherwise, and cannot be
    # told not to: a second TorchServe on the machine would fail to start on them.
    grpc_inference: int
    grpc_management: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(5)))


def config_properties(config: TorchServeConfig, ports: Ports, store: Path,
                      mar: str = "vampirenet.mar", name: str = "vampirenet") -> str:
    """The text of ``config.properties``: loopback ports, the model and its batching."""
    models = {name: {"1.0": {"defaultVersion": True, "marName": mar,
                             "minWorkers": config.workers, "maxWorkers": config.workers,
                             "batchSize": config.batch_size,
                             "maxBatchDelay": config.max_batch_delay_ms,
                             "responseTimeout": 60}}}
    lines = {
        "inference_address": f"http://{HOST}:{ports.inference}",
        "management_address": f"http://{HOST}:{ports.management}",
        "metrics_address": f"http://{HOST}:{ports.metrics}",
        "grpc_inference_address": HOST,
        "grpc_inference_port": str(ports.grpc_inference),
        "grpc_management_address": HOST,
        "grpc_management_port": str(ports.grpc_management),
        "model_store": str(store),
        "load_models": mar,
        "models": json.dumps(models),
        "default_workers_per_model": str(config.workers),
        "metrics_mode": "prometheus",
        "enable_model_api": "true",  # registering models through the management API
        "disable_token_authorization": "false" if config.token_auth else "true",
        "install_py_dep_per_model": "false",
        "vmargs": f"-Xmx{config.heap} -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


@dataclass
class TorchServe:
    """A running TorchServe: its three base URLs, its process, and its folder."""

    inference_url: str
    management_url: str
    metrics_url: str
    process: subprocess.Popen
    folder: Path
    name: str = "vampirenet"

    def headers(self, api: str) -> dict[str, str]:
        """Bearer key for ``api`` ("management" or "inference") when token auth is on."""
        key_file = self.folder / "key_file.json"
        if not key_file.exists():
            return {}
        keys = json.loads(key_file.read_text())
        return {"Authorization": f"Bearer {keys[api]['key']}"}

    def client(self, api: str, timeout_s: float = 60.0) -> httpx.Client:
        base = {"inference": self.inference_url, "management": self.management_url,
                "metrics": self.metrics_url}[api]
        return httpx.Client(base_url=base, timeout=timeout_s, trust_env=False,
                            headers=self.headers(api) if api != "metrics" else {})

    def describe(self, name: str | None = None) -> dict[str, Any]:
        """The management API's description of the model: batching, workers and their state."""
        with self.client("management") as client:
            response = client.get(f"/models/{name or self.name}")
            response.raise_for_status()
            return response.json()[0]

    def scale(self, workers: int, name: str | None = None) -> dict[str, Any]:
        """Set the model's workers (min = max = ``workers``) and wait until they are up."""
        with self.client("management", timeout_s=120.0) as client:
            response = client.put(f"/models/{name or self.name}",
                                  params={"min_worker": workers, "max_worker": workers,
                                          "synchronous": "true"})
            response.raise_for_status()
        return self.describe(name)

    def register(self, mar: str, name: str, *, batch_size: int, max_batch_delay_ms: int,
                 workers: int = 1) -> dict[str, Any]:
        """Register another archive from the model store, with its own batching."""
        with self.client("management", timeout_s=120.0) as client:
            response = client.post("/models", params={
                "url": mar, "model_name": name, "batch_size": batch_size,
                "max_batch_delay": max_batch_delay_ms, "initial_workers": workers,
                "synchronous": "true"})
            response.raise_for_status()
        return self.describe(name)

    def unregister(self, name: str) -> None:
        with self.client("management", timeout_s=120.0) as client:
            client.delete(f"/models/{name}").raise_for_status()

    def metrics(self) -> str:
        """The metrics endpoint's Prometheus text."""
        with self.client("metrics") as client:
            response = client.get("/metrics")
            response.raise_for_status()
            return response.text


def wait_for_workers(server: TorchServe, timeout_s: float) -> None:
    """Until ``/ping`` says Healthy and every worker of the model is READY."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"TorchServe exited with code {server.process.returncode}; "
                               f"see {server.folder / 'logs'}")
        with contextlib.suppress(httpx.TransportError, httpx.HTTPStatusError, IndexError):
            with server.client("inference", timeout_s=2.0) as client:
                healthy = client.get("/ping").status_code == 200
            workers = server.describe()["workers"] if healthy else []
            if workers and all(worker["status"] == "READY" for worker in workers):
                return
        time.sleep(0.25)
    raise TimeoutError(f"TorchServe's workers were not ready within {timeout_s:.0f} s; see "
                       f"{server.folder / 'logs'}")


@contextlib.contextmanager
def running_torchserve(folder: Path, config: TorchServeConfig | None = None, *,
                       name: str = "vampirenet", weights: Path | None = None,
                       env: Mapping[str, str] | None = None,
                       timeout_s: float = 180.0) -> Iterator[TorchServe]:
    """Archive VampireNet into ``folder``, start TorchServe on it, yield it, always stop it."""
    if not java_available():
        raise RuntimeError(JAVA_MISSING)
    config = config or TorchServeConfig()
    store = folder / "model-store"
    mar = archive(store, name=name, weights=weights)
    ports = Ports.free()
    properties = folder / "config.properties"
    properties.write_text(config_properties(config, ports, store, mar.name, name))
    root = str(Path(vampire_detector.__file__).parent.parent)  # workers import this library
    command = [tool("torchserve"), "--start", "--foreground", "--ncs",
               "--model-store", str(store), "--ts-config", str(properties)]
    if not config.token_auth:
        command.append("--disable-token-auth")
    # A Unix socket's path must fit in 108 bytes, and the workers' sockets are made in here:
    # under /tmp when the caller's temporary folder is a long path.
    short = None if len(tempfile.gettempdir()) < 60 else "/tmp"
    with tempfile.TemporaryDirectory(prefix="ts-", dir=short, ignore_cleanup_errors=True) as tmp:
        process = subprocess.Popen(
            command, cwd=folder, start_new_session=True,  # its own group: stop_group() ends it
            stdout=(folder / "torchserve.out").open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": tmp, "TEMP": tmp,  # TEMP: the JVM's java.io.tmpdir
                 "PYTHONPATH": os.pathsep.join(filter(None, [root,
                                                             os.environ.get("PYTHONPATH")])),
                 "VAMPIRE_THREADS": str(config.threads), "OMP_NUM_THREADS": str(config.threads),
                 "LOG_LOCATION": str(folder / "logs"), "METRICS_LOCATION": str(folder / "logs"),
                 **(env or {})})
        server = TorchServe(f"http://{HOST}:{ports.inference}",
                            f"http://{HOST}:{ports.management}",
                            f"http://{HOST}:{ports.metrics}", process, folder, name)
        try:
            wait_for_workers(server, timeout_s)
            yield server
        finally:
            stop_group(process)
