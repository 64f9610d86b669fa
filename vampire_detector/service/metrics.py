"""The service's Prometheus metrics: what the night watch reads while Dracula sleeps.

Plain ``prometheus_client`` rather than an instrumentation package: the metrics that matter
here (batch size, queue wait, predictions by label, confidence, drift) are the detector's own,
so they must be written by hand anyway, and one small ASGI middleware covers requests with
route *templates* as labels (never raw paths, whose variety would swell the series count).

Several worker processes each keep their own counters. When ``PROMETHEUS_MULTIPROC_DIR`` names
an empty folder before the service starts, every worker writes its values to files there and
``/metrics`` adds them up, so a scrape sees the whole service whichever worker answers it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vampire_detector.drift import (
    DriftWindow,
    cheek_saturation,
    clean_reference,
    confidence_reference,
)
from vampire_detector.predictor import Prediction, Predictor

log = logging.getLogger("vampire_detector.service.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter("vampire_http_requests", "HTTP requests answered",
                   ["route", "method", "status"])
REQUEST_SECONDS = Histogram("vampire_http_request_duration_seconds",
                            "Time from request to the end of the response",
                            ["route", "method", "status"], buckets=FAST)
INFERENCE_SECONDS = Histogram("vampire_model_inference_seconds",
                              "Time of one model call (one batch)", buckets=FAST)
BATCH_SIZE = Histogram("vampire_batch_size", "Portraits per model call",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
QUEUE_SECONDS = Histogram("vampire_queue_wait_seconds",
                          "Time a portrait waited in the batcher's queue", buckets=FAST)
PREDICTIONS = Counter("vampire_predictions", "Verdicts given", ["label"])
CONFIDENCE = Histogram("vampire_prediction_confidence", "Probability of the verdict given",
                       ["label"], buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0))
MODEL_INFO = Gauge("vampire_model_info", "The model this worker serves (value 1)",
                   ["version", "runtime"], multiprocess_mode="livemax")
DRIFT = Gauge("vampire_drift_psi", "PSI of the last live window against clean training "
              "portraits", ["signal"], multiprocess_mode="livemax")
GPU_ALLOCATED = Gauge("vampire_gpu_memory_allocated_bytes", "CUDA memory held by tensors",
                      ["device"], multiprocess_mode="livesum")
GPU_RESERVED = Gauge("vampire_gpu_memory_reserved_bytes", "CUDA memory held by the caching "
                     "allocator", ["device"], multiprocess_mode="livesum")

Queued = tuple[float, np.ndarray]  # (perf_counter when queued, portrait)


class DriftWatch:
    """Drift windows for the inputs (cheek colour) and the answers (P(vampire)).

    Its references take about a second to compute, so ``calibrate`` runs once the service is
    already ready: watching for drift never delays a cold start. Until then, batches pass
    unwatched.
    """

    def __init__(self) -> None:
        self.windows: dict[str, DriftWindow] = {}

    def calibrate(self, predictor: Predictor, image_size: int) -> None:
        """Windows against clean training portraits; without a usable model, inputs only."""
        windows = {"input": DriftWindow(clean_reference(size=image_size))}
        try:
            windows["confidence"] = DriftWindow(confidence_reference(predictor,
                                                                     size=image_size))
        except Exception:
            log.exception("no confidence reference: watching the inputs only")
        for name in windows:
            DRIFT.labels(name).set(0.0)
        self.windows = windows  # one assignment: the batcher's thread sees all or nothing

    def observe(self, images: np.ndarray, predictions: Sequence[Prediction]) -> None:
        """Add a batch to the windows; a watcher's fault must never fail a traveller."""
        try:
            for name, window in self.windows.items():
                window.add(cheek_saturation(images) if name == "input" else
                           [p.probability if p.label == "vampire" else 1 - p.probability
                            for p in predictions])
                DRIFT.labels(name).set(window.score())
        except Exception:
            log.exception("drift watch failed on a batch")


def instrument_batches(predict: Callable[[np.ndarray], list[Prediction]],
                       watch: DriftWatch | None = None) -> Callable[[Sequence[Queued]],
                                                                     list[Prediction]]:
    """Wrap a batch predictor: record queue wait, batch size, inference time and verdicts."""
    def run(items: Sequence[Queued]) -> list[Prediction]:
        start = time.perf_counter()
        for queued, _ in items:
            QUEUE_SECONDS.observe(start - queued)
        BATCH_SIZE.observe(len(items))
        images = np.stack([image for _, image in items])
        predictions = predict(images)
        INFERENCE_SECONDS.observe(time.perf_counter() - start)
        for prediction in predictions:
            PREDICTIONS.labels(prediction.label).inc()
            CONFIDENCE.labels(prediction.label).observe(prediction.probability)
        if watch is not None:
            watch.observe(images, predictions)
        return predictions

    return run


def record_model(version: str, runtime: str) -> None:
    MODEL_INFO.labels(version, runtime).set(1)


def _route_label(scope: Scope, known: set[str]) -> str:
    """The route template; a refused request that never reached routing keeps a known path."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    return scope["path"] if scope["path"] in known else "unmatched"


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request by route, method and status."""

    def __init__(self, app: ASGIApp, known_paths: set[str]):
        self.app, self.known = app, known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # an unhandled crash answers 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            labels = (_route_label(scope, self.known), scope["method"], str(status))
            REQUESTS.labels(*labels).inc()
            REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - start)


def update_gpu_memory() -> None:
    """CUDA memory per device, only if this process already uses torch with CUDA."""
    torch = sys.modules.get("torch")  # an ONNX-only worker never imports torch for this
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    for index in range(torch.cuda.device_count()):
        GPU_ALLOCATED.labels(str(index)).set(torch.cuda.memory_allocated(index))
        GPU_RESERVED.labels(str(index)).set(torch.cuda.memory_reserved(index))


def exposition() -> bytes:
    """The text a scrape reads: this process alone, or every worker's files added up."""
    update_gpu_memory()
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return generate_latest(registry)


def add_metrics(app: FastAPI) -> None:
    """Expose ``GET /metrics`` and count every request; call after the other middleware."""
    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    for route in app.routes:  # a series born at zero lets rate() see its very first request
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and getattr(route, "include_in_schema", False):
                REQUESTS.labels(route.path, method, "200")
    app.add_middleware(RequestMetrics, known_paths={getattr(r, "path", "") for r in app.routes})
