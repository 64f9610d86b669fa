"""Attacks on a running server, measured from outside: what a crafted upload costs it, and
what clients that never finish their request do to everyone else.

Introduced in Chapter 12.

``besiege`` sends one upload ``copies`` times at once to a server started by ``launch``, while
a prober asks ``/health`` every ``every_s``: the answers, the server's CPU time and peak memory
(from ``/proc``), and how long each ``/health`` waited. A server that decodes on its event loop
answers nothing else meanwhile, and its liveness probe is the first to notice.

``trickle`` opens connections that send their headers and half a body, then nothing, and
reports when the server let go of each, while the same prober runs: under uvicorn's
``--limit-concurrency``, connections held open are places that honest clients do not get.

``create_naive_app`` is Renfield's endpoint (``naive``) with the two things he added before
this chapter: a ``/health`` route, so both servers are asked the same question, and request
metrics labelled by the raw path, as the first tutorial he found did.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx2 as httpx
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from vampire_detector.harness import naive
from vampire_detector.harness.resources import (
    cpu_seconds,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
)

Probe = tuple[float, float, "int | None"]  # (sent, seconds after the start; waited s; status)


def create_naive_app() -> FastAPI:
    """Renfield's endpoint with ``/health`` and raw-path request metrics at ``/metrics``."""
    app = naive.create_app()
    registry = CollectorRegistry()
    seconds = Histogram("renfield_request_seconds", "Time to answer a request",
                        ["path", "method", "status"], registry=registry)

    @app.middleware("http")
    async def timed(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        seconds.labels(request.url.path, request.method,  # every path a client invents
                       str(response.status_code)).observe(time.perf_counter() - start)
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


@dataclass
class Siege:
    """What one attack got back, what it cost the server, and what ``/health`` saw meanwhile."""

    answers: Counter[str] = field(default_factory=Counter)  # status (or "no answer") -> count
    seconds: float = 0.0  # from the first request sent to the last answer
    cpu_s: float = 0.0  # the server's CPU time over the attack, all its processes
    rss_before: int = 0  # bytes resident when the attack began
    peak_rss: int = 0  # the most bytes resident during the attack
    health: list[Probe] = field(default_factory=list)

    @property
    def peak_added_mib(self) -> float:
        return max(0, self.peak_rss - self.rss_before) / 2**20

    @property
    def slowest_health_ms(self) -> float:
        """The longest any ``/health`` waited, failed probes included."""
        return max((waited for _, waited, _ in self.health), default=float("nan")) * 1000

    @property
    def health_ok(self) -> float:
        """The share of ``/health`` probes answered 200."""
        return (sum(status == 200 for *_, status in self.health) / len(self.health)
                if self.health else float("nan"))


async def probe_health(url: str, every_s: float, done: asyncio.Event, start: float,
                       into: list[Probe], timeout_s: float = 60.0) -> None:
    """Ask ``url``/health every ``every_s`` (on a fresh connection each time, as a kubelet
    does) until ``done`` is set; record when each probe was sent, how long it waited and its
    status (None: no answer)."""
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, trust_env=False,
                                 limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while not done.is_set():
            sent = time.perf_counter()
            try:
                status: int | None = (await client.get("/health")).status_code
            except httpx.TransportError:
                status = None
            into.append((sent - start, time.perf_counter() - sent, status))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), every_s)


@contextlib.asynccontextmanager
async def watched(url: str, pid: int, siege: Siege, every_s: float, settle_s: float):
    """Probe ``/health`` and account for the server's CPU and memory around the block."""
    reset_peak_rss(pid)
    siege.rss_before, cpu, start = rss_bytes(pid), cpu_seconds(pid), time.perf_counter()
    done = asyncio.Event()
    prober = asyncio.ensure_future(probe_health(url, every_s, done, start, siege.health))
    try:
        yield start
        await asyncio.sleep(settle_s)  # a little quiet after the attack: does it recover?
    finally:
        done.set()
        await prober
        siege.cpu_s = cpu_seconds(pid) - cpu
        siege.peak_rss = max(peak_rss_bytes(pid), siege.rss_before)


async def besiege(url: str, pid: int, data: bytes, content_type: str, copies: int, *,
                  path: str = "/predict", every_s: float = 0.05, settle_s: float = 0.3,
                  timeout_s: float = 120.0) -> Siege:
    """Send ``data`` as ``copies`` uploads at once to the server ``pid`` serving ``url``."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    siege = Siege()
    limits = httpx.Limits(max_connections=copies)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, trust_env=False,
                                 limits=limits) as client:

        async def one() -> str:
            try:
                files = {"image": ("portrait", data, content_type)}
                return str((await client.post(path, files=files)).status_code)
            except httpx.TransportError:
                return "no answer"

        async with watched(url, pid, siege, every_s, settle_s) as start:
            siege.answers.update(await asyncio.gather(*(one() for _ in range(copies))))
            siege.seconds = time.perf_counter() - start
    return siege


async def wander(url: str, pid: int, requests: int, *, concurrency: int = 16,
                 every_s: float = 0.05) -> Siege:
    """``requests`` GETs of paths that do not exist, each new (``/portrait-<random hex>``): what
    a scanner or a crawler sends, and what grows a metric labelled by the raw path."""
    if requests < 1 or concurrency < 1:
        raise ValueError("requests and concurrency must be at least 1")
    siege = Siege()
    paths = asyncio.Queue()
    for _ in range(requests):
        paths.put_nowait(f"/portrait-{secrets.token_hex(8)}")
    async with httpx.AsyncClient(base_url=url, timeout=30.0, trust_env=False,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker() -> None:
            while not paths.empty():
                try:
                    status = str((await client.get(paths.get_nowait())).status_code)
                except httpx.TransportError:
                    status = "no answer"
                siege.answers[status] += 1

        async with watched(url, pid, siege, every_s, settle_s=0.0) as start:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            siege.seconds = time.perf_counter() - start
    return siege


@dataclass
class Trickle:
    """What slow clients held: when the server let go of each, and what ``/health`` saw."""

    released_s: list[float | None] = field(default_factory=list)  # None: still held at the end
    statuses: Counter[str] = field(default_factory=Counter)  # the slow clients' answers
    siege: Siege = field(default_factory=Siege)
    gave_up_s: float = float("nan")  # no slow client gives up before this (s after the start)

    @property
    def probes_while_held(self) -> list[Probe]:
        """The ``/health`` probes answered before any slow client could have given up."""
        return [probe for probe in self.siege.health if probe[0] + probe[1] < self.gave_up_s]


def half_a_request(host: str, path: str, body_bytes: int) -> bytes:
    """A multipart POST's headers, declaring ``body_bytes``, and the first half of its body:
    an image part that has begun and does not end."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: multipart/form-data; boundary=garlic\r\n"
            f"Content-Length: {body_bytes}\r\n\r\n").encode()
    part = (b"--garlic\r\nContent-Disposition: form-data; name=\"image\"; "
            b"filename=\"portrait.png\"\r\nContent-Type: image/png\r\n\r\n")
    return head + part + b"\x00" * (body_bytes // 2 - len(part))


async def slow_client(host: str, port: int, path: str, body_bytes: int, hold_s: float,
                      sent: asyncio.Event, begun: list[float]) -> tuple[float | None, str]:
    """Send half a request and nothing more; when (seconds after ``begun[0]``) the server
    answered or closed the connection, and its status, or None if it held on for ``hold_s``.
    ``sent`` is set once the half request is out."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(half_a_request(host, path, body_bytes))
        await writer.drain()
        sent.set()
        try:
            first = await asyncio.wait_for(reader.readline(), hold_s)
        except asyncio.TimeoutError:
            return None, "held"
        parts = first.split()
        return time.perf_counter() - begun[0], (parts[1].decode() if len(parts) > 1
                                                else "closed")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def trickle(url: str, pid: int, clients: int, hold_s: float, *, path: str = "/predict",
                  body_bytes: int = 100_000, every_s: float = 0.1) -> Trickle:
    """Open ``clients`` slow connections at once and keep them for up to ``hold_s``."""
    if clients < 1 or hold_s <= 0:
        raise ValueError("clients must be at least 1 and hold_s positive")
    where = urlsplit(url)
    result, opened = Trickle(), time.perf_counter()
    begun = [opened]
    events = [asyncio.Event() for _ in range(clients)]
    held = [asyncio.ensure_future(slow_client(where.hostname, where.port, path, body_bytes,
                                              hold_s, event, begun)) for event in events]
    for event in events:  # every slow client is in before the prober takes its place
        await event.wait()
    await asyncio.sleep(0.05)
    async with watched(url, pid, result.siege, every_s, settle_s=0.0) as start:
        begun[0] = start
        result.gave_up_s = opened + hold_s - start  # each waits hold_s after it sent, later
        answers = await asyncio.gather(*held)
        result.siege.seconds = time.perf_counter() - start
        # Probe on until the clients would have given up: does the server recover?
        await asyncio.sleep(max(0.0, hold_s - (time.perf_counter() - opened)))
    result.released_s = [when for when, _ in answers]
    result.statuses.update(status for _, status in answers)
    return result
