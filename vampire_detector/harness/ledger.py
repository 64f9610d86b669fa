"""The performance ledger: from Renfield's endpoint to the final service, one change at a time.

Every row is a server configuration that adds one improvement to the row before it, and all of
them are measured in the same run, under the same load, taking turns (``loadtest``):

1. naive: eager PyTorch, one image per call, on the event loop (Chapter 6's baseline);
2. the reference service on ONNX Runtime, FP32, one thread, no batching (Chapter 4);
3. the INT8 model instead (Chapter 5);
4. micro-batching: up to 16 portraits per model call, waiting at most 2 ms (Chapter 6);
5. thread tuning, two ways of giving the model every core: one process whose one model call
   at a time uses ``cores`` threads, or ``cores`` uvicorn workers with one thread each.

Each row's ratio to the naive row and to the row before it is printed. The better of the two
thread layouts is the final configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from vampire_detector.bench import Timing, time_calls
from vampire_detector.flops import PeakEstimate
from vampire_detector.harness.loadtest import Samples, Server, naive_server, onnx_server, ratio
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import make_portraits
from vampire_detector.release import Release

NAIVE, FP32, INT8, BATCHED = "naive", "+ ONNX Runtime FP32", "+ INT8", "+ micro-batching"
ONE_PROCESS, WORKERS = "+ threads: 1 process", "+ threads: workers"


def ledger_servers(release: Release, cores: int | None = None) -> list[Server]:
    """The ledger's steps, in order; the last two are the thread layouts to choose from."""
    cores = cores or os.cpu_count() or 1
    return [
        naive_server(NAIVE),
        onnx_server(FP32, release.fp32, threads=1, max_batch_size=1),
        onnx_server(INT8, release.int8, threads=1, max_batch_size=1),
        onnx_server(BATCHED, release.int8, threads=1, max_batch_size=16),
        onnx_server(ONE_PROCESS, release.int8, threads=cores, max_batch_size=16),
        onnx_server(WORKERS, release.int8, threads=1, max_batch_size=16, workers=cores),
    ]


def final_server(release: Release, cores: int | None = None) -> Server:
    """The configuration that ships: INT8, micro-batching, one single-threaded worker per core.

    It is also the Kubernetes layout of Chapter 9 (one-CPU pods with ``VAMPIRE_THREADS=1``),
    and on our two cores it won the ledger's thread-tuning step.
    """
    return ledger_servers(release, cores)[-1]


def settings_label(server: Server) -> str:
    """The settings of a step, short enough for a table cell."""
    env = server.env
    if "VAMPIRE_RUNTIME" not in env:
        return "eager PyTorch, default threads"
    model = "INT8" if "int8" in env["VAMPIRE_MODEL_PATH"] else "FP32"
    batch = env["VAMPIRE_MAX_BATCH_SIZE"]
    threads = env["VAMPIRE_THREADS"]
    return (f"{model}, batch {'1' if batch == '1' else 'up to ' + batch}, {server.workers} "
            f"worker{'s' * (server.workers > 1)} x {threads} thread{'s' * (threads != '1')}")


def previous_step(name: str, names: list[str]) -> str | None:
    """The row a step improves on: the two thread layouts both improve on micro-batching."""
    index = names.index(name)
    if index == 0:
        return None
    return BATCHED if name in (ONE_PROCESS, WORKERS) else names[index - 1]


def best_threads(results: Mapping[str, Samples]) -> str:
    """The thread layout with the higher throughput: the final configuration."""
    return max((ONE_PROCESS, WORKERS), key=lambda name: results[name].throughput)


def ledger_rows(servers: list[Server], results: Mapping[str, Samples]) -> list[dict[str, str]]:
    names = [server.name for server in servers]
    naive, final = results[names[0]], best_threads(results)
    rows = []
    for server in servers:
        samples, before = results[server.name], previous_step(server.name, names)
        s = samples.summary()
        rows.append({"step": server.name + (" (chosen)" if server.name == final else ""),
                     "settings": settings_label(server), "req/s": f"{s['throughput']:.0f}",
                     "p50 ms": f"{s['p50_ms']:.0f}", "p95 ms": f"{s['p95_ms']:.0f}",
                     "p99 ms": f"{s['p99_ms']:.0f}", "failed": f"{s['errors']}",
                     "vs naive": ratio(samples, naive),
                     "vs previous": ratio(samples, results[before]) if before else ""})
    return rows


def model_timing(path, batch: int = 16, threads: int | None = None) -> Timing:
    """The model alone, in this process, at a full batch: the ceiling the service works under."""
    detector = OrtDetector(path, threads=threads or os.cpu_count())
    images = make_portraits(batch, seed=11)[0]
    return time_calls(lambda: detector.predict(images), warmup=5, iters=40, items=batch)


def arithmetic_rows(flops_per_image: int, peak: PeakEstimate, release: Release,
                    service_rps: float) -> list[dict[str, str]]:
    """Achieved GFLOP/s (FP32) or GOP/s (INT8) against the estimated peak, model and service."""
    fp32, int8 = model_timing(release.fp32), model_timing(release.int8)
    cases = [("model alone, FP32, batch 16", fp32.throughput, peak.fp32_gflops),
             ("model alone, INT8, batch 16", int8.throughput, peak.int8_gops),
             ("final service, INT8, over HTTP", service_rps, peak.int8_gops)]
    return [{"": name, "images/s": f"{rate:,.0f}",
             "achieved G(FL)OP/s": f"{rate * flops_per_image / 1e9:.1f}",
             "estimated peak": f"{top:,.0f}",
             "share of peak": f"{rate * flops_per_image / 1e9 / top:.1%}"}
            for name, rate, top in cases]
