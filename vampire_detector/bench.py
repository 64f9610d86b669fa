"""Honest latency measurements: warm up first, then report percentiles, not just a mean.

Introduced in Chapter 1.

The first calls of a model pay for memory allocation, kernel selection and caches; a user sees
the steady state, so warm-up calls are run and thrown away. A service is judged by its slow
requests, so the tail (p95, p99) is reported beside the median.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vampire_detector.device import synchronize


@dataclass(frozen=True)
class Timing:
    """Latencies of repeated calls, in milliseconds; each call handled ``items`` inputs."""

    samples_ms: tuple[float, ...]
    items: int = 1

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q))

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples_ms))

    @property
    def throughput(self) -> float:
        """Items per second at the mean latency (one caller, back to back)."""
        return 1000.0 * self.items / self.mean


def time_calls(fn: Callable[[], object], *, warmup: int = 5, iters: int = 50, items: int = 1,
               device: torch.device | None = None,
               clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then time ``iters`` calls one by one.

    On CUDA the device is synchronised around each call, because kernel launches return before
    the GPU has finished and would otherwise look almost free. With ``VAMPIRE_QUICK=1`` in the
    environment (CI's first pass over every chapter, which checks that the code runs) a fifth of
    the calls are made: the numbers get noisier, the code paths stay the same.
    """
    if iters < 1:
        raise ValueError("iters must be at least 1")
    if os.environ.get("VAMPIRE_QUICK") == "1":
        warmup, iters = min(warmup, 2), max(3, iters // 5)
    sync = (lambda: synchronize(device)) if device is not None else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(iters):
        start = clock()
        fn()
        sync()
        samples.append((clock() - start) * 1000.0)
    return Timing(tuple(samples), items)


def timing_row(name: str, timing: Timing, baseline: Timing | None = None) -> dict[str, str]:
    """One table row: percentiles, throughput and, given a baseline, the speed-up over it."""
    row = {"": name, "p50 ms": f"{timing.p50:.2f}", "p95 ms": f"{timing.p95:.2f}",
           "p99 ms": f"{timing.p99:.2f}", "items/s": f"{timing.throughput:,.0f}"}
    if baseline is not None:
        row["speed-up"] = f"{timing.throughput / baseline.throughput:.2f}x"
    return row


def markdown_table(rows: Sequence[dict[str, object]]) -> str:
    """Rows sharing the same keys, as a Markdown table (renders in notebooks and the book)."""
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def machine_summary() -> str:
    """The hardware and software a measurement was taken on, to print beside every table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass  # not Linux: keep platform's answer
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu}, {os.cpu_count()} logical cores{gpu}; torch {torch.__version__} "
            f"using {torch.get_num_threads()} threads")

