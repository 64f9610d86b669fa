"""The course's service against TorchServe and LitServe: same model file, preprocessing, load.

Introduced in Chapter 14.

All three servers run the same model file: the committed VampireNet weights in eager PyTorch,
or the production INT8 ResNet-18 (``release.build_release``) in ONNX Runtime. All three batch
dynamically with the same limits (at most ``max_batch`` images, waiting at most ``max_wait_ms``
for a batch to fill): the course's service with its micro-batcher, TorchServe with its
frontend's ``batch_size`` and ``max_batch_delay``, LitServe with its API's ``max_batch_size``
and ``batch_timeout``. All decode and normalise with ``vampire_detector.images``. The load
generator (``loadtest.one_round``) sends the same multipart uploads to each, at each
concurrency level, the servers taking turns.

Besides latency and throughput, each server's process tree is watched through ``/proc``
(``resources``): CPU seconds spent per 1,000 answered requests, and the peak resident memory.
For TorchServe the tree is the launcher, the JVM and its Python worker; for LitServe, its HTTP
process and its inference workers.

``search`` tunes each server on its own over a small grid (``Setting``: workers, batch size,
batch delay, model threads), in two stages, the servers taking turns setting by setting,
and ``best`` picks the setting with the highest
throughput whose p95 latency stays within a budget: a comparison of tuned servers, not of one
setting that may suit one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from vampire_detector.harness.launch import running_server_process
from vampire_detector.harness.litserve_app import LitServe, LitServeConfig, running_litserve
from vampire_detector.harness.loadtest import (
    Samples,
    Upload,
    check_load,
    mixed_workload,
    one_round,
    settle,
)
from vampire_detector.harness.resources import ResourceSampler, cpu_seconds
from vampire_detector.harness.torchserve import TorchServe, TorchServeConfig, running_torchserve
from vampire_detector.portraits import make_portraits
from vampire_detector.release import build_release
from vampire_detector.weights import weights_path

COURSE = "course service (FastAPI, micro-batcher)"
TORCHSERVE = "TorchServe 0.12 (dynamic batching)"
LITSERVE = "LitServe 0.2 (dynamic batching)"
SERVERS = (COURSE, TORCHSERVE, LITSERVE)
MODELS = ("vampirenet", "int8")  # eager VampireNet (.pt), INT8 ResNet-18 in ONNX Runtime


def model_file(model: str, folder: Path | None = None) -> Path:
    """The one file every server loads: VampireNet's committed weights, or the production INT8
    ResNet-18 built into ``folder`` (seconds once ``make weights-cache`` has trained it)."""
    if model == "vampirenet":
        return weights_path("vampirenet")
    if model == "int8":
        if folder is None:
            raise ValueError("the INT8 model is built into a folder: give one")
        return build_release(folder).int8
    raise ValueError(f"unknown model {model!r}: one of {', '.join(MODELS)}")


@dataclass(frozen=True)
class Comparison:
    """What is measured: the load at each level and the batching both servers get."""

    levels: tuple[int, ...] = (1, 4, 16, 32)  # requests in flight
    requests: int = 400  # per server, level and round
    rounds: int = 2
    time_limit_s: float = 20.0
    max_batch: int = 8
    max_wait_ms: int = 5
    threads: int = 1
    workers: int = 1

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("give at least one concurrency level")
        for level in self.levels:
            check_load(self.requests, level, self.time_limit_s)
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")
        self.setting  # noqa: B018  (checks the server setting)

    @property
    def setting(self) -> Setting:
        return Setting(self.workers, self.max_batch, self.max_wait_ms, self.threads)


@dataclass(frozen=True)
class Setting:
    """One server's knobs: model processes, most images per call, batch delay, model threads."""

    workers: int = 1
    max_batch: int = 8
    max_wait_ms: int = 5
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("workers", "max_batch", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")

    def label(self) -> str:
        return (f"{self.workers} worker(s) x {self.threads} thread(s), batch {self.max_batch}, "
                f"{self.max_wait_ms} ms")


QUICK = Comparison(levels=(1, 16), requests=120, rounds=1, time_limit_s=8.0)


@dataclass
class Measured:
    """One server's results: samples per level, CPU seconds per level, memory, start-up."""

    samples: dict[int, Samples] = field(default_factory=dict)
    cpu_s: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0
    startup_s: float = 0.0  # 0: started elsewhere, not timed here

    def rows(self, name: str) -> list[dict[str, str]]:
        rows = []
        for level, samples in self.samples.items():
            s = samples.summary()
            answered = len(samples.latencies_ms)
            per_1000 = self.cpu_s[level] / answered * 1000 if answered else float("nan")
            rows.append({"server": name, "in flight": str(level),
                         "throughput req/s": f"{s['throughput']:.1f}",
                         "p50 ms": f"{s['p50_ms']:.1f}", "p95 ms": f"{s['p95_ms']:.1f}",
                         "p99 ms": f"{s['p99_ms']:.1f}", "errors": str(s["errors"]),
                         "CPU s per 1,000 req": f"{per_1000:.1f}"})
        return rows


@dataclass
class Endpoint:
    url: str
    path: str
    pid: int


Starter = Callable[[Path, Setting, Path], contextlib.AbstractContextManager[Endpoint]]


@contextlib.contextmanager
def course_service(model: Path, setting: Setting, folder: Path) -> Iterator[Endpoint]:
    """The course's service: eager PyTorch for a ``.pt`` file, ONNX Runtime for ``.onnx``;
    ``workers`` uvicorn worker processes, each with its own micro-batcher."""
    onnx = model.suffix == ".onnx"
    env = {"VAMPIRE_RUNTIME": "onnx" if onnx else "eager", "VAMPIRE_MODEL_PATH": str(model),
           "VAMPIRE_THREADS": str(setting.threads), "OMP_NUM_THREADS": str(setting.threads),
           "VAMPIRE_MAX_BATCH_SIZE": str(setting.max_batch),
           "VAMPIRE_MAX_WAIT_MS": str(setting.max_wait_ms)}
    if not onnx:
        env["VAMPIRE_ARCH"] = "vampirenet"
    app = ("vampire_detector.service.app:create_app" if onnx
           else "vampire_detector.torch_serving:create_app")
    with running_server_process(app, factory=True, env=env,
                                workers=setting.workers) as (url, process):
        yield Endpoint(url, "/predict", process.pid)


@contextlib.contextmanager
def torchserve(model: Path, setting: Setting, folder: Path) -> Iterator[Endpoint]:
    config = TorchServeConfig(batch_size=setting.max_batch,
                              max_batch_delay_ms=setting.max_wait_ms, workers=setting.workers,
                              threads=setting.threads)
    with running_torchserve(folder, config, weights=model) as server:
        yield Endpoint(server.inference_url, "/predictions/vampirenet", server.process.pid)


@contextlib.contextmanager
def litserve(model: Path, setting: Setting, folder: Path) -> Iterator[Endpoint]:
    config = LitServeConfig(max_batch_size=setting.max_batch,
                            batch_timeout_ms=setting.max_wait_ms, workers=setting.workers,
                            threads=setting.threads)
    with running_litserve(model, config) as server:
        yield Endpoint(server.url, server.path, server.process.pid)


STARTERS: dict[str, Starter] = {COURSE: course_service, TORCHSERVE: torchserve,
                                LITSERVE: litserve}


async def measure(comparison: Comparison, uploads: Sequence[Upload],
                  endpoints: dict[str, Endpoint]) -> dict[str, Measured]:
    """Warm each server, then every level in turns; CPU time is read around each round."""
    uploads = list(uploads)
    results = {name: Measured() for name in endpoints}
    for endpoint in endpoints.values():
        await settle(endpoint.url, uploads, max(comparison.levels), path=endpoint.path)
    with contextlib.ExitStack() as stack:
        traces = {name: stack.enter_context(ResourceSampler(endpoint.pid))
                  for name, endpoint in endpoints.items()}
        for level in comparison.levels:
            for _ in range(comparison.rounds):
                for name, endpoint in endpoints.items():
                    before = cpu_seconds(endpoint.pid)
                    samples = results[name].samples.setdefault(level, Samples())
                    await one_round(endpoint.url, uploads, comparison.requests, level,
                                    comparison.time_limit_s, samples, endpoint.path)
                    spent = cpu_seconds(endpoint.pid) - before
                    results[name].cpu_s[level] = results[name].cpu_s.get(level, 0.0) + spent
    for name, trace in traces.items():
        results[name].peak_rss = max(trace.rss, default=0)
    return results


def compare(comparison: Comparison = QUICK, model: str = "vampirenet") -> dict[str, Measured]:
    """``compare_servers`` from synchronous code (a script)."""
    return asyncio.run(compare_servers(comparison, model=model))


def workload() -> list[Upload]:
    return mixed_workload(make_portraits(64, seed=14)[0], bad_share=0)


def endpoint_of(server: TorchServe | LitServe) -> tuple[str, Endpoint]:
    """A server the caller already started, as the comparison's name and endpoint."""
    if isinstance(server, TorchServe):
        return TORCHSERVE, Endpoint(server.inference_url, f"/predictions/{server.name}",
                                    server.process.pid)
    return LITSERVE, Endpoint(server.url, server.path, server.process.pid)


async def compare_servers(comparison: Comparison = QUICK, weights: Path | None = None, *,
                          model: str = "vampirenet",
                          running: Sequence[TorchServe | LitServe] = (),
                          servers: Sequence[str] = SERVERS) -> dict[str, Measured]:
    """Start the servers on one model file, measure them, stop them; results by server name.

    ``weights``: the file to serve (default: ``model``'s file, see ``model_file``).
    ``running``: peers already started on the same file with the comparison's setting (the
    chapter starts each once); they are measured, not started or stopped here.
    """
    started = dict(endpoint_of(server) for server in running)
    startup = {}
    with tempfile.TemporaryDirectory(prefix="servers-") as folder, \
            contextlib.ExitStack() as stack:
        weights = weights or model_file(model, Path(folder) / "model")
        endpoints = {}
        for name in servers:
            if name in started:
                endpoints[name] = started[name]
                continue
            began = time.perf_counter()
            endpoints[name] = stack.enter_context(
                STARTERS[name](weights, comparison.setting, Path(folder) / name.split()[0]))
            startup[name] = time.perf_counter() - began
        results = await measure(comparison, workload(), endpoints)
    for name, seconds in startup.items():
        results[name].startup_s = seconds
    return results


# The search: batching first (one worker, one thread), then the process and thread layouts
# that fit two cores, at the best batching of the first stage.
BATCHES, DELAYS_MS = (8, 16, 32), (2, 5, 10)
LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (workers, threads)


def batching_grid() -> list[Setting]:
    return [Setting(1, batch, delay, 1) for batch, delay in itertools.product(BATCHES, DELAYS_MS)]


def layout_grid(batching: Setting) -> list[Setting]:
    return [replace(batching, workers=workers, threads=threads) for workers, threads in LAYOUTS
            if (workers, threads) != (batching.workers, batching.threads)]


@dataclass(frozen=True)
class Tried:
    """One setting of one server, measured at one load: what the search compares."""

    server: str
    setting: Setting
    throughput: float
    p95_ms: float
    errors: int

    def row(self) -> dict[str, str]:
        return {"server": self.server, "setting": self.setting.label(),
                "throughput req/s": f"{self.throughput:.1f}", "p95 ms": f"{self.p95_ms:.1f}",
                "errors": str(self.errors)}

    def as_json(self) -> dict:
        return {"server": self.server, "setting": asdict(self.setting),
                "throughput": self.throughput, "p95_ms": self.p95_ms, "errors": self.errors}


def best(tried: Sequence[Tried], p95_budget_ms: float) -> Tried | None:
    """The highest throughput among error-free settings within the p95 budget (None: none)."""
    fit = [t for t in tried if t.errors == 0 and t.p95_ms <= p95_budget_ms]
    return max(fit, key=lambda t: t.throughput, default=None)


async def try_setting(name: str, weights: Path, setting: Setting, comparison: Comparison,
                      uploads: list[Upload], folder: Path) -> Tried:
    """Start one server with ``setting``, warm it, measure it at the comparison's highest
    level, stop it."""
    level = max(comparison.levels)
    with STARTERS[name](weights, setting, folder) as endpoint:
        await settle(endpoint.url, uploads, level, path=endpoint.path)
        samples = Samples()
        for _ in range(comparison.rounds):
            await one_round(endpoint.url, uploads, comparison.requests, level,
                            comparison.time_limit_s, samples, endpoint.path)
    summary = samples.summary()
    return Tried(name, setting, samples.throughput, summary["p95_ms"], int(summary["errors"]))


async def search_servers(comparison: Comparison, *, model: str = "vampirenet",
                         p95_budget_ms: float = 250.0, servers: Sequence[str] = SERVERS,
                         log: Callable[[str], None] = print) -> list[Tried]:
    """Every server over the grid, in two stages; everything tried, in order.

    The servers take turns setting by setting (all servers on the first setting, then all on
    the second, ...), so that other work on the machine lands on all of them alike."""
    uploads, tried = workload(), []
    with tempfile.TemporaryDirectory(prefix="search-") as folder:
        weights = model_file(model, Path(folder) / "model")

        async def one(name: str, setting: Setting) -> None:
            result = await try_setting(name, weights, setting, comparison, uploads,
                                       Path(folder) / str(len(tried)))
            log(f"{name}: {setting.label()}: {result.throughput:.1f} req/s, "
                f"p95 {result.p95_ms:.1f} ms")
            tried.append(result)

        for setting in batching_grid():
            for name in servers:
                await one(name, setting)
        layouts = {}
        for name in servers:
            mine = [t for t in tried if t.server == name]
            chosen = best(mine, p95_budget_ms) or max(mine, key=lambda t: t.throughput)
            layouts[name] = layout_grid(chosen.setting)
        for turn in range(max(len(grid) for grid in layouts.values())):
            for name in servers:
                if turn < len(layouts[name]):
                    await one(name, layouts[name][turn])
    return tried


def search(comparison: Comparison, *, model: str = "vampirenet",
           p95_budget_ms: float = 250.0) -> list[Tried]:
    """``search_servers`` from synchronous code (a script)."""
    return asyncio.run(search_servers(comparison, model=model, p95_budget_ms=p95_budget_ms))


def best_rows(tried: Sequence[Tried], p95_budget_ms: float) -> list[dict[str, str]]:
    """One row per server: its best setting within the budget, or why there is none."""
    rows = []
    for name in dict.fromkeys(t.server for t in tried):
        chosen = best([t for t in tried if t.server == name], p95_budget_ms)
        rows.append(chosen.row() if chosen else {
            "server": name, "setting": f"none within p95 {p95_budget_ms:.0f} ms",
            "throughput req/s": "n/a", "p95 ms": "n/a", "errors": "n/a"})
    return rows


def summary_rows(results: dict[str, Measured]) -> list[dict[str, str]]:
    """One row per server: start-up to ready and the peak resident memory of its tree."""
    return [{"server": name,
             "start to ready s": f"{measured.startup_s:.1f}" if measured.startup_s else "n/a",
             "peak RSS MB": f"{measured.peak_rss / 2**20:.0f}"}
            for name, measured in results.items()]
