"""A soak: one server under a long mixed load, watched from outside and from inside.

Introduced in Chapter 15.

A benchmark asks "how fast?"; a soak asks "does it stay well?". Thousands of requests, a share
of them bad, at high concurrency: no request may get a 5xx or be dropped, every bad upload
must get its 4xx, and the server's memory must stop growing once it is warm. Memory is sampled
from ``/proc`` during the run (``resources``); the service's own counters are scraped from its
``/metrics`` afterwards (``scrape``), so the client's and the server's accounts can be compared.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx2 as httpx

from vampire_detector.harness.launch import running_server_process
from vampire_detector.harness.loadtest import Samples, Server, Upload, one_round, settle
from vampire_detector.harness.resources import ResourceSampler, ResourceTrace
from vampire_detector.harness.scrape import service_report
from vampire_detector.service.metrics import MULTIPROC_ENV

MEMORY_TOLERANCE = 0.05  # RSS may rise at most 5% over the second half of a run


@dataclass(frozen=True)
class SoakResult:
    samples: Samples
    trace: ResourceTrace
    seconds: float
    service: dict[str, float]  # the server's own counters, from /metrics
    requested: int = 0  # how many requests the run was meant to send

    def problems(self, memory_tolerance: float = MEMORY_TOLERANCE) -> list[str]:
        """Everything that makes the run a failure; an empty list is a pass."""
        s, found = self.samples.summary(), []
        if s["requests"] < self.requested:
            found.append(f"the time limit stopped the run after {s['requests']} of "
                         f"{self.requested} requests")
        if s["5xx"] or s["transport"]:
            found.append(f"{s['5xx']} server errors and {s['transport']} transport errors")
        if s["bad_refused"] != s["bad_sent"]:
            found.append(f"only {s['bad_refused']} of {s['bad_sent']} bad uploads got their 4xx")
        if s["errors"]:
            found.append(f"{s['errors']} requests did not get the answer they should have")
        grown, fraction = self.trace.second_half_growth()
        if fraction > memory_tolerance:
            found.append(f"RSS grew {grown / 2**20:.1f} MiB ({fraction:.1%}) in the second "
                         f"half, more than {memory_tolerance:.0%}")
        return found


async def soak(server: Server, uploads: Sequence[Upload], requests: int = 10_000,
               concurrency: int = 32, time_limit_s: float = 600.0,
               sample_every_s: float = 0.25) -> SoakResult:
    """Start ``server``, warm it, send ``requests`` uploads at ``concurrency`` while sampling
    its memory and CPU, and read its ``/metrics`` before and after; always stop the server.

    Its workers share one metrics folder, so a scrape counts all of them, whichever answers.
    """
    samples = Samples()
    with (tempfile.TemporaryDirectory(prefix="soak-metrics-") as shared,
          running_server_process(server.app, factory=server.factory,
                                 env={MULTIPROC_ENV: shared, **server.env},
                                 workers=server.workers, ready_path=server.ready_path) as (
            url, process)):
        await settle(url, uploads, concurrency)  # every worker loaded, before any clock
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            before = (await client.get("/metrics")).text
            with ResourceSampler(process.pid, sample_every_s) as trace:
                start = time.perf_counter()
                await one_round(url, list(uploads), requests, concurrency, time_limit_s,
                                samples)
                seconds = time.perf_counter() - start
            after = (await client.get("/metrics")).text
    return SoakResult(samples, trace, seconds, service_report(after, before), requests)


def run_soak(server: Server, uploads: Sequence[Upload], **options: float) -> SoakResult:
    """``soak`` from synchronous code (a script, a test); a notebook can ``await soak(...)``."""
    return asyncio.run(soak(server, uploads, **options))
