"""The course's service against TorchServe: same weights, same preprocessing, same load.

Introduced in Chapter 14.

Both servers run eager PyTorch on the committed VampireNet weights file, one model thread, one
model process, and both batch dynamically with the same limits (at most ``max_batch`` images,
waiting at most ``max_wait_ms`` for a batch to fill): the course's service with its micro-
batcher, TorchServe with its frontend's ``batch_size`` and ``max_batch_delay``. Both decode and
normalise with ``vampire_detector.images``. The load generator (``loadtest.one_round``) sends
the same multipart uploads to both, at each concurrency level, the servers taking turns.

Besides latency and throughput, each server's process tree is watched through ``/proc``
(``resources``): CPU seconds spent per 1,000 answered requests, and the peak resident memory.
For TorchServe the tree is the launcher, the JVM and its Python worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vampire_detector.harness.launch import running_server_process
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
from vampire_detector.weights import weights_path

COURSE = "course service (FastAPI, micro-batcher)"
TORCHSERVE = "TorchServe 0.12 (dynamic batching)"


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

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("give at least one concurrency level")
        for level in self.levels:
            check_load(self.requests, level, self.time_limit_s)
        if self.rounds < 1 or self.max_batch < 1 or self.threads < 1:
            raise ValueError("rounds, max_batch and threads must be at least 1")


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


@contextlib.contextmanager
def course_service(weights: Path, comparison: Comparison) -> Iterator[Endpoint]:
    env = {"VAMPIRE_RUNTIME": "eager", "VAMPIRE_ARCH": "vampirenet",
           "VAMPIRE_MODEL_PATH": str(weights), "VAMPIRE_THREADS": str(comparison.threads),
           "OMP_NUM_THREADS": str(comparison.threads),
           "VAMPIRE_MAX_BATCH_SIZE": str(comparison.max_batch),
           "VAMPIRE_MAX_WAIT_MS": str(comparison.max_wait_ms)}
    with running_server_process("vampire_detector.torch_serving:create_app", factory=True,
                                env=env) as (url, process):
        yield Endpoint(url, "/predict", process.pid)


@contextlib.contextmanager
def torchserve(weights: Path, comparison: Comparison, folder: Path) -> Iterator[Endpoint]:
    config = TorchServeConfig(batch_size=comparison.max_batch,
                              max_batch_delay_ms=comparison.max_wait_ms, workers=1,
                              threads=comparison.threads)
    with running_torchserve(folder, config, weights=weights) as server:
        yield Endpoint(server.inference_url, "/predictions/vampirenet", server.process.pid)


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


def compare(comparison: Comparison = QUICK, weights: Path | None = None) -> dict[str, Measured]:
    """``compare_servers`` from synchronous code (a script)."""
    return asyncio.run(compare_servers(comparison, weights))


async def compare_servers(comparison: Comparison = QUICK, weights: Path | None = None, *,
                          running: TorchServe | None = None) -> dict[str, Measured]:
    """Start both servers on ``weights``, measure them, stop them; results by server name.

    ``running``: a TorchServe already started on the same weights with the comparison's
    batching (the chapter starts its JVM once); it is measured, not started or stopped here.
    """
    weights = weights or weights_path("vampirenet")
    uploads = mixed_workload(make_portraits(64, seed=14)[0], bad_share=0)
    startup = {}
    with tempfile.TemporaryDirectory(prefix="servers-") as folder, \
            contextlib.ExitStack() as stack:
        endpoints = {}
        began = time.perf_counter()
        endpoints[COURSE] = stack.enter_context(course_service(weights, comparison))
        startup[COURSE] = time.perf_counter() - began
        if running is None:
            began = time.perf_counter()
            endpoints[TORCHSERVE] = stack.enter_context(
                torchserve(weights, comparison, Path(folder)))
            startup[TORCHSERVE] = time.perf_counter() - began
        else:
            endpoints[TORCHSERVE] = Endpoint(running.inference_url,
                                             f"/predictions/{running.name}", running.process.pid)
        results = await measure(comparison, uploads, endpoints)
    for name, seconds in startup.items():
        results[name].startup_s = seconds
    return results


def summary_rows(results: dict[str, Measured]) -> list[dict[str, str]]:
    """One row per server: start-up to ready and the peak resident memory of its tree."""
    return [{"server": name,
             "start to ready s": f"{measured.startup_s:.1f}" if measured.startup_s else "n/a",
             "peak RSS MB": f"{measured.peak_rss / 2**20:.0f}"}
            for name, measured in results.items()]
