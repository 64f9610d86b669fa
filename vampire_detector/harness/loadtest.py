"""A load test: several server configurations under the same load, in one run.

Each ``Server`` (a uvicorn app, its ``VAMPIRE_*`` environment, its worker count) runs in its
own process on a loopback port, and an async httpx client keeps a fixed number of requests in
flight against one of them at a time. The servers take turns in short rounds, so that
background work on the machine lands on all of them alike.

The load may be mixed: a share of bad uploads (``hostile.bad_uploads``), each of which must be
refused with its 4xx. Every answer is sorted by status class (ok, 4xx, 5xx, transport error),
so a service that "survives" by answering 500 is caught. Chapter 6's contest (Renfield's naive
endpoint against the reference service, ``benchmarks/bench_serve.py``) and Chapter 15's performance
ledger (``benchmarks/bench_ledger.py``) both run on this engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np

from vampire_detector.harness.hostile import bad_uploads
from vampire_detector.harness.launch import running_server
from vampire_detector.images import to_png
from vampire_detector.model import PRODUCTION_ARCH
from vampire_detector.onnx_export import export_onnx
from vampire_detector.portraits import make_portraits
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.train import ensure_weights
from vampire_detector.weights import load_model


def require_counts(**counts: int) -> None:
    """Raise ValueError, naming the count, for the first of ``counts`` under 1."""
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def check_load(requests: int, concurrency: int, time_limit_s: float) -> None:
    """Refuse a load that would measure nothing, saying which number to change."""
    require_counts(requests=requests, concurrency=concurrency)
    if not time_limit_s > 0:
        raise ValueError(f"the time limit must be a positive number of seconds, got "
                         f"{time_limit_s}")


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

    def __post_init__(self) -> None:
        check_load(self.requests, self.concurrency, self.time_limit_s)
        require_counts(rounds=self.rounds, threads=self.threads,
                       max_batch_size=self.max_batch_size)
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {self.max_wait_ms}")


@dataclass
class Samples:
    """What one server's requests got back, by status class, and how long the rounds took."""

    latencies_ms: list[float] = field(default_factory=list)  # portraits answered 200
    errors: int = 0  # requests that did not get the answer they should have
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)  # "ok", "4xx", "5xx", "transport"
    bad_sent: int = 0
    bad_refused: int = 0  # bad uploads answered with their expected 4xx

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time, all rounds together."""
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def record(self, upload: Upload, status: int | None, latency_ms: float) -> None:
        """Sort one answer (``status`` None: the connection failed) into the counts."""
        self.outcomes[outcome(status)] += 1
        if upload.expected_status == 200 and status == 200:
            self.latencies_ms.append(latency_ms)
            return
        if upload.expected_status != 200:
            self.bad_sent += 1
            if status == upload.expected_status:
                self.bad_refused += 1
                return
        self.errors += 1

    def summary(self) -> dict[str, float]:
        done = bool(self.latencies_ms)
        p50, p95, p99 = (float(np.percentile(self.latencies_ms, q)) if done else float("nan")
                         for q in (50, 95, 99))
        return {"requests": len(self.latencies_ms) + self.errors + self.bad_refused,
                "errors": self.errors, "throughput": self.throughput,
                "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
                **{name: self.outcomes[name] for name in OUTCOMES},
                "bad_sent": self.bad_sent, "bad_refused": self.bad_refused}

    def row(self, name: str, baseline: Samples,
            previous: Samples | None = None) -> dict[str, str]:
        s = self.summary()
        row = {"server": name, "requests": f"{s['requests']}", "errors": f"{s['errors']}",
               "throughput req/s": f"{s['throughput']:.1f}", "p50 ms": f"{s['p50_ms']:.1f}",
               "p95 ms": f"{s['p95_ms']:.1f}", "p99 ms": f"{s['p99_ms']:.1f}",
               "throughput vs naive": ratio(self, baseline)}
        if previous is not None:
            row["vs previous"] = ratio(self, previous)
        return row


OUTCOMES = ("ok", "4xx", "5xx", "transport")


def outcome(status: int | None) -> str:
    """The class of an answer: a transport error has no status at all."""
    if status is None:
        return "transport"
    return "ok" if status < 400 else "4xx" if status < 500 else "5xx"


def ratio(samples: Samples, baseline: Samples) -> str:
    return f"{samples.throughput / baseline.throughput:.2f}x" if baseline.throughput else "n/a"


@dataclass(frozen=True)
class Upload:
    """One multipart request body, encoded once: the load generator's own CPU time then goes
    to HTTP, not to encoding the same form a thousand times."""

    body: bytes
    headers: dict[str, str]
    expected_status: int = 200  # a portrait; a bad upload expects its 4xx

    @classmethod
    def of(cls, data: bytes, content_type: str = "image/png",
           expected_status: int = 200) -> Upload:
        request = httpx.Request("POST", "http://127.0.0.1/predict",
                                files={"image": ("portrait.png", data, content_type)})
        return cls(request.read(), {"content-type": request.headers["content-type"]},
                   expected_status)


def mixed_workload(portraits: Sequence[np.ndarray], bad_share: float = 0.1,
                   max_upload_bytes: int | None = None) -> list[Upload]:
    """Portraits with every kind of bad upload spread evenly among them, ``bad_share`` of all.

    A round sends the list in order, cycling, so any long run sees exactly that share.
    """
    if not 0 <= bad_share < 1:
        raise ValueError(f"bad_share must be in [0, 1), got {bad_share}")
    pngs = [to_png(image) for image in portraits]
    good = [Upload.of(png) for png in pngs]
    if bad_share == 0:
        return good
    limit = max_upload_bytes or ServiceSettings.model_fields["max_upload_bytes"].default
    bad = [Upload.of(b.data, b.content_type, b.expected_status)
           for b in bad_uploads(pngs[0], limit)]
    total = round(len(bad) / bad_share)  # one cycle: every bad kind once
    stride = total / len(bad)
    bad_slots = {int((k + 1) * stride) - 1: upload for k, upload in enumerate(bad)}
    return [bad_slots.get(i) or good[i % len(good)] for i in range(total)]


async def one_round(url: str, uploads: list[Upload], requests: int, concurrency: int,
                    time_limit_s: float, samples: Samples) -> None:
    """Send ``requests`` uploads, ``concurrency`` at a time; record what each one got."""
    check_load(requests, concurrency, time_limit_s)
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
                    status = response.status_code
                except httpx.HTTPError:
                    status = None
                samples.record(upload, status, (time.perf_counter() - sent) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        samples.seconds += time.perf_counter() - start


async def settle(url: str, uploads: Sequence[Upload], concurrency: int,
                 timeout_s: float = 120.0) -> None:
    """Untimed warm-up rounds until one round gets every answer right.

    ``/ready`` is answered by whichever worker takes the probe: with several uvicorn workers,
    the others may still be loading their model, and they rightly answer 503 until then. A
    load test that starts at the first 200 would count those as the service's failures. (A
    server that never gets a round right, e.g. Renfield's on bad uploads, times out.)
    """
    deadline = time.perf_counter() + timeout_s
    while True:
        samples = Samples()
        await one_round(url, list(uploads), 4 * concurrency, concurrency, timeout_s, samples)
        if samples.errors == 0:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{url} still failed {samples.errors} warm-up requests after "
                               f"{timeout_s:.0f} s")
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Server:
    """One server configuration under test: an app, its environment, its server and workers."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    app: str = "vampire_detector.service.app:create_app"
    factory: bool = True
    workers: int = 1
    ready_path: str = "/ready"
    server: str = "uvicorn"  # or "gunicorn", for a WSGI app
    threads: int = 1  # gunicorn's threads per worker


def naive_server(name: str = "naive: eager, one image per call, on the event loop") -> Server:
    """Renfield's endpoint on the production backbone; it has no /ready, only its docs."""
    return Server(name, {"VAMPIRE_ARCH": PRODUCTION_ARCH},
                  app="vampire_detector.harness.naive:create_app", ready_path="/docs")


def flask_server(threads: int = 4) -> Server:
    """The same naive endpoint in Flask, under gunicorn with ``threads`` threads."""
    return Server(f"naive Flask: the same, gunicorn with {threads} threads",
                  {"VAMPIRE_ARCH": PRODUCTION_ARCH},
                  app="vampire_detector.harness.naive_flask:create_app", ready_path="/health",
                  server="gunicorn", threads=threads)


def onnx_server(name: str, model: Path, *, threads: int = 1, max_batch_size: int = 16,
                max_wait_ms: float = 2.0, workers: int = 1, **env: str) -> Server:
    """The reference service on an ONNX file, with the knobs the ledger turns."""
    return Server(name, {"VAMPIRE_RUNTIME": "onnx", "VAMPIRE_MODEL_PATH": str(model),
                         "VAMPIRE_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
                         "VAMPIRE_MAX_BATCH_SIZE": str(max_batch_size),
                         "VAMPIRE_MAX_WAIT_MS": str(max_wait_ms), **env}, workers=workers)


def reference_model(contest: Contest, folder: Path) -> Path:
    """The ONNX file the reference serves: the one given, or the backbone exported now."""
    if contest.model_path is not None:
        return contest.model_path
    backbone = load_model(PRODUCTION_ARCH, path=ensure_weights(PRODUCTION_ARCH))
    return export_onnx(backbone.cpu(), folder / f"{PRODUCTION_ARCH}.onnx")


def contestants(onnx_path: Path, contest: Contest) -> list[Server]:
    """Chapter 6's servers: Renfield's endpoint in FastAPI and in Flask, and the reference."""
    return [naive_server(), flask_server(),
            onnx_server(f"reference: ONNX Runtime ({onnx_path.name}) + micro-batching",
                        onnx_path, threads=contest.threads,
                        max_batch_size=contest.max_batch_size, max_wait_ms=contest.max_wait_ms)]


def run_contest(contest: Contest) -> dict[str, Samples]:
    """``measure`` from synchronous code (a script); a notebook can ``await measure(...)``."""
    return asyncio.run(measure(contest))


async def measure(contest: Contest) -> dict[str, Samples]:
    """Chapter 6's contest: export the backbone, then ``measure_servers`` on both servers."""
    ensure_weights(PRODUCTION_ARCH)  # trains once per machine (about 90 s), before any clock
    uploads = mixed_workload(make_portraits(64, seed=6)[0], bad_share=0)
    with tempfile.TemporaryDirectory(prefix="loadtest-") as folder:
        servers = contestants(reference_model(contest, Path(folder)), contest)
        return await measure_servers(servers, contest, uploads)


async def measure_servers(servers: Sequence[Server], contest: Contest,
                          uploads: Sequence[Upload]) -> dict[str, Samples]:
    """Start every server, warm each, run the rounds in turns, stop them; samples by name."""
    if len({server.name for server in servers}) != len(servers):
        raise ValueError("every server needs its own name")
    uploads = list(uploads)
    results = {server.name: Samples() for server in servers}
    with contextlib.ExitStack() as stack:  # all up at once; the idle ones cost nothing
        urls = {server.name: stack.enter_context(running_server(
            server.app, factory=server.factory, env=server.env, workers=server.workers,
            ready_path=server.ready_path, server=server.server, threads=server.threads))
            for server in servers}
        for url in urls.values():  # untimed: workers, connections, caches and batches settle in
            await settle(url, uploads, contest.concurrency)
        for _ in range(contest.rounds):
            for name, url in urls.items():
                await one_round(url, uploads, contest.requests, contest.concurrency,
                                contest.time_limit_s, results[name])
    return results
