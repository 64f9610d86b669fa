"""What the access log costs: the service's throughput with its log lines off and on.

    python benchmarks/bench_access_log.py            # about half a minute on two cores

The service runs in this process, with the committed VampireNet ONNX model (or, with
``--constant``, a constant model in its place, so that the requests cost as little as they can
and the log's share is as large as it can be), behind
httpx's in-process transport, with a few requests in flight at once. Three settings take
turns, round after round, so that a busy neighbour slows them all alike: no access log; the
log as shipped (the request queues its record, a thread formats and writes it); and the same
lines formatted and written by the event loop's own thread. The lines go to a temporary file.
Wall-clock throughput on a shared machine swings with the neighbours, so the ratio is taken
on the process's CPU time (both threads, the writer's included): requests per CPU second. It
also times the logging call alone: how many microseconds the calling thread spends per line.
Prints the median throughput of each and the median of its ratios to "off" in the same round
(paired, so that a slow round slows both sides of its ratio); writes
``_build/bench/access_log.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import httpx2 as httpx
import numpy as np

from vampire_detector.images import to_png
from vampire_detector.paths import course_root
from vampire_detector.portraits import make_portraits
from vampire_detector.predictor import Predictor
from vampire_detector.service import app as service_app
from vampire_detector.service.request_log import ACCESS_LOGGER, AccessLog
from vampire_detector.service.runtimes import LoadedModel, load_predictor
from vampire_detector.service.settings import ServiceSettings

OUT = Path("_build/bench")
MODES = ("off", "on (queued, as shipped)", "on (written on the loop)")


class Constant(Predictor):
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.tile(np.float32([[0.3, 0.7]]), (len(images), 1))


def constant(settings: ServiceSettings) -> LoadedModel:
    return LoadedModel(Constant(), "constant")


async def one_round(mode: str, png: bytes, requests: int, concurrency: int,
                    model: Path | None) -> tuple[float, float]:
    """Requests per wall-clock second and per CPU second through a fresh app in ``mode``."""
    settings = ServiceSettings(warmup_batches=1, access_log=mode != "off", model_path=model)
    app = service_app.create_app(settings, loader=load_predictor if model else constant,
                                 load_in_background=False, log_in_thread=mode != MODES[2])
    files = {"image": ("p.png", png, "image/png")}
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"))
        left = requests

        async def caller() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                response = await client.post("/predict", files=files)
                assert response.status_code == 200, response.text

        await client.post("/predict", files=files)  # the first call pays for imports
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        await stack.aclose()  # the lifespan's end writes what is still queued: CPU spent here too
        return (requests / (time.perf_counter() - start),
                requests / (time.process_time() - cpu))


def measure(requests: int, rounds: int, concurrency: int,
            model: Path | None) -> dict[str, list[tuple[float, float]]]:
    png = to_png(make_portraits(1, seed=0)[0][0])
    rates: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryFile("w") as sink:
        for _ in range(rounds):
            for mode in MODES:
                to_sink = functools.partial(AccessLog, stream=sink)
                with mock.patch.object(service_app, "AccessLog", to_sink):
                    rates[mode].append(asyncio.run(one_round(mode, png, requests, concurrency,
                                                               model)))
    return rates


def line_cost_us(queued: bool, lines: int = 20_000) -> float:
    """Microseconds the caller spends per access-log line (a typical /predict line)."""
    fields = {"event": "request", "request_id": "0" * 32, "method": "POST", "route": "/predict",
              "status": 200, "latency_ms": 3.21, "model_version": "vampirenet-onnx-3f2a9c1b",
              "label": "vampire", "probability": 0.9731}
    logger = logging.getLogger(ACCESS_LOGGER)
    with tempfile.TemporaryFile("w") as sink:
        access_log = AccessLog(stream=sink, queued=queued)
        access_log.start()
        try:
            start = time.perf_counter()
            for _ in range(lines):
                logger.info("request", extra={"access": fields})
            return (time.perf_counter() - start) / lines * 1e6
        finally:
            access_log.stop()


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--constant", action="store_true",
                        help="a constant model: the log's worst case")
    args = parser.parse_args(argv)
    if min(args.requests, args.rounds, args.concurrency) < 1:
        parser.error("requests, rounds and concurrency must be at least 1")
    model = None if args.constant else course_root() / "models" / "vampirenet.onnx"
    if model is not None and not model.is_file():
        parser.error(f"{model} is missing: run `make model-file` (or pass --constant)")
    rates = measure(args.requests, args.rounds, args.concurrency, model)
    def ratio(mode: str, which: int) -> float:
        return round(statistics.median([on[which] / off[which] for on, off in zip(
            rates[mode], rates["off"], strict=True)]), 3)

    rows = [{"access log": mode,
             "median req/s": round(statistics.median(r[0] for r in rates[mode]), 1),
             "wall ratio to off": ratio(mode, 0),
             "median req per CPU s": round(statistics.median(r[1] for r in rates[mode]), 1),
             "CPU ratio to off": ratio(mode, 1)} for mode in MODES]
    for row in rows:
        print(f"{row['access log']:<26} {row['median req/s']:>7} req/s "
              f"({row['wall ratio to off']:.3f} of off)   {row['median req per CPU s']:>7} "
              f"req/CPU-s ({row['CPU ratio to off']:.3f} of off)")
    costs = {"queued": round(statistics.median(line_cost_us(True) for _ in range(3)), 1),
             "written on the spot": round(statistics.median(line_cost_us(False)
                                                             for _ in range(3)), 1)}
    off = statistics.median(r[1] for r in rates["off"])
    for name, cost in costs.items():
        print(f"one line, {name}: {cost} us on the caller's thread = "
              f"{cost * off / 1e4:.2f}% of a request's CPU ({off:.0f} req/CPU-s)")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"model": str(model or "constant"), "requests": args.requests, "rounds": args.rounds,
              "concurrency": args.concurrency, "rows": rows, "rates": rates,
              "line_cost_us": costs}
    (OUT / "access_log.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
