"""A load test: Renfield's naive endpoint against the reference service, in one run.

Both servers serve Dracula's production backbone (ResNet-18 on 64x64 portraits, trained once
into the weights cache): the naive one eagerly, one image per call on the event loop; the
reference one with ONNX Runtime (any ONNX file, INT8 ones included) and micro-batching. Each
runs in its own process on a loopback port, and an async httpx client keeps a fixed number of
requests in flight against one of them at a time. The servers take turns in short rounds, so
that background work on the machine lands on both. ``benchmarks/serve.py`` is its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np

from vampire_detector.images import to_png
from vampire_detector.model import PRODUCTION_ARCH
from vampire_detector.onnx_export import export_onnx
from vampire_detector.portraits import make_portraits
from vampire_detector.service.launch import running_server
from vampire_detector.train import ensure_weights
from vampire_detector.weights import load_model


@dataclass(frozen=True)
class Contest:
    """What is measured: the load, the rounds, and the reference service's settings."""

    requests: int = 300  # per round and server
    rounds: int = 3
    concurrency: int = 16  # requests in flight
    time_limit_s: float = 20.0  # a round stops early rather than run away on a slow machine
    model_path: Path | None = None  # the reference's ONNX file; None: export the backbone
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)  # one call at a time
    max_batch_size: int = 16
    max_wait_ms: float = 2.0


@dataclass
class Samples:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time, all rounds together."""
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float]:
        done = bool(self.latencies_ms)
        p50, p95, p99 = (float(np.percentile(self.latencies_ms, q)) if done else float("nan")
                         for q in (50, 95, 99))
        return {"requests": len(self.latencies_ms) + self.errors, "errors": self.errors,
                "throughput": self.throughput, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}

    def row(self, name: str, baseline: Samples) -> dict[str, str]:
        s = self.summary()
        ratio = s["throughput"] / baseline.throughput if baseline.throughput else float("nan")
        return {"server": name, "requests": f"{s['requests']}", "errors": f"{s['errors']}",
                "throughput req/s": f"{s['throughput']:.1f}", "p50 ms": f"{s['p50_ms']:.1f}",
                "p95 ms": f"{s['p95_ms']:.1f}", "p99 ms": f"{s['p99_ms']:.1f}",
                "throughput vs naive": f"{ratio:.2f}x"}


@dataclass(frozen=True)
class Upload:
    """One multipart request body, encoded once: the load generator's own CPU time then goes
    to HTTP, not to encoding the same form a thousand times."""

    body: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, png: bytes) -> Upload:
        request = httpx.Request("POST", "http://127.0.0.1/predict",
                                files={"image": ("portrait.png", png, "image/png")})
        return cls(request.read(), {"content-type": request.headers["content-type"]})


async def one_round(url: str, uploads: list[Upload], requests: int, concurrency: int,
                    time_limit_s: float, samples: Samples) -> None:
    """Send ``requests`` uploads, ``concurrency`` at a time; record each one's latency."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0,
                                 trust_env=False) as client:  # loopback only, never a proxy
        counter = iter(range(requests))
        start = time.perf_counter()
        deadline = start + time_limit_s

        async def worker() -> None:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                upload = uploads[i % len(uploads)]
                sent = time.perf_counter()
                try:
                    response = await client.post("/predict", content=upload.body,
                                                 headers=upload.headers)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    samples.latencies_ms.append((time.perf_counter() - sent) * 1000)
                else:
                    samples.errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        samples.seconds += time.perf_counter() - start


def reference_model(contest: Contest, folder: Path) -> Path:
    """The ONNX file the reference serves: the one given, or the backbone exported now."""
    if contest.model_path is not None:
        return contest.model_path
    backbone = load_model(PRODUCTION_ARCH, path=ensure_weights(PRODUCTION_ARCH))
    return export_onnx(backbone.cpu(), folder / f"{PRODUCTION_ARCH}.onnx")


def contestants(onnx_path: Path, contest: Contest) -> dict[str, tuple[str, bool, dict]]:
    """Name -> (uvicorn app, is it a factory, environment) of the two servers."""
    reference_env = {"VAMPIRE_RUNTIME": "onnx", "VAMPIRE_MODEL_PATH": str(onnx_path),
                     "VAMPIRE_THREADS": str(contest.threads),
                     "VAMPIRE_MAX_BATCH_SIZE": str(contest.max_batch_size),
                     "VAMPIRE_MAX_WAIT_MS": str(contest.max_wait_ms)}
    return {"naive: eager, one image per call, on the event loop":
            ("vampire_detector.service.naive:app", False, {"VAMPIRE_ARCH": PRODUCTION_ARCH}),
            f"reference: ONNX Runtime ({onnx_path.name}) + micro-batching":
            ("vampire_detector.service.app:create_app", True, reference_env)}


def run_contest(contest: Contest) -> dict[str, Samples]:
    """``measure`` from synchronous code (a script); a notebook can ``await measure(...)``."""
    return asyncio.run(measure(contest))


async def measure(contest: Contest) -> dict[str, Samples]:
    """Start both servers, warm them, run the rounds in turns, stop them; samples by name."""
    ensure_weights(PRODUCTION_ARCH)  # trains once per machine (about 90 s), before any clock
    uploads = [Upload.of(to_png(image)) for image in make_portraits(64, seed=6)[0]]
    with tempfile.TemporaryDirectory(prefix="loadtest-") as folder:
        servers = contestants(reference_model(contest, Path(folder)), contest)
        results = {name: Samples() for name in servers}
        with contextlib.ExitStack() as stack:  # both up at once; the idle one costs nothing
            urls = {name: stack.enter_context(running_server(
                app, factory=factory, env=env, ready_path="/ready" if factory else "/docs"))
                for name, (app, factory, env) in servers.items()}
            for url in urls.values():  # untimed: connections, caches and batches settle in
                await one_round(url, uploads, 4 * contest.concurrency, contest.concurrency,
                                60.0, Samples())
            for _ in range(contest.rounds):
                for name, url in urls.items():
                    await one_round(url, uploads, contest.requests, contest.concurrency,
                                    contest.time_limit_s, results[name])
    return results
