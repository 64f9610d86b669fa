"""The service's Prometheus metrics: what the night watch reads while Dracula sleeps (Chapter 10).

Plain ``prometheus_client`` rather than an instrumentation package: the metrics that matter
here (batch size, queue wait, predictions by label, confidence, drift) are the detector's own,
so they must be written by hand anyway, and one small ASGI middleware covers requests with
route *templates* as labels (never raw paths, whose variety would swell the series count).

Nothing is registered at import time. ``create_app`` makes one ``ServiceMetrics``, on a
registry of its own, and keeps it on ``app.state.metrics``: two apps in one process (a test
suite, a notebook) never share a counter, and a test can assert exact counts.

Several worker processes each keep their own counters. When ``PROMETHEUS_MULTIPROC_DIR`` names
an empty folder before the service starts, every worker writes its values to files there and
``/metrics`` adds them up, so a scrape sees the whole service whichever worker answers it.

Each request's duration is observed with its request id as an *exemplar* (see
``request_log``): a scraper that asks for OpenMetrics (Prometheus does, by default) sees, beside
each bucket, the id of one request that landed there, and the id finds its log line.
``prometheus_client`` keeps exemplars in single-process mode only: with
``PROMETHEUS_MULTIPROC_DIR`` set they are dropped silently, and the buckets still count.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

import anyio
import numpy as np
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vampire_detector.drift import (
    DriftWindow,
    cheek_saturation,
    clean_reference,
    confidence_reference,
)
from vampire_detector.predictor import Prediction, Predictor
from vampire_detector.service.errors import REQUEST_ID

log = logging.getLogger("vampire_detector.service.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HTTP_LABELS = ("route", "method", "status")
# A client may send any token as the method (h11 passes them on): anything else is "other", so
# that random methods cannot grow a new series each.
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"}
SHADOW_OUTCOMES = ("agree", "disagree", "error", "skipped")


class ServiceMetrics:
    """Every metric of one service instance, registered on its own ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        on = {"registry": self.registry}
        self.requests = Counter("vampire_http_requests", "HTTP requests answered",
                                HTTP_LABELS, **on)
        self.request_seconds = Histogram(
            "vampire_http_request_duration_seconds",
            "Time from request to the end of the response", HTTP_LABELS, buckets=FAST, **on)
        self.inference_seconds = Histogram("vampire_model_inference_seconds",
                                           "Time of one model call (one batch)", buckets=FAST,
                                           **on)
        self.batch_size = Histogram("vampire_batch_size", "Portraits per model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), **on)
        self.queue_seconds = Histogram("vampire_queue_wait_seconds",
                                       "Time a portrait waited in the batcher's queue",
                                       buckets=FAST, **on)
        self.predictions = Counter("vampire_predictions", "Verdicts given", ["label"], **on)
        self.confidence = Histogram(
            "vampire_prediction_confidence", "Probability of the verdict given", ["label"],
            buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0), **on)
        self.model_info = Gauge("vampire_model_info", "The model this worker serves (value 1)",
                                ["version", "runtime"], multiprocess_mode="livemax", **on)
        self.drift = Gauge("vampire_drift_psi", "PSI of the last live window against clean "
                           "training portraits", ["signal"], multiprocess_mode="livemax", **on)
        self.gpu_allocated = Gauge("vampire_gpu_memory_allocated_bytes",
                                   "CUDA memory held by tensors", ["device"],
                                   multiprocess_mode="livesum", **on)
        self.shadow = Counter("vampire_shadow_comparisons", "Portraits also sent to the shadow "
                              "challenger, by outcome against the champion's verdict",
                              ["outcome"], **on)
        for outcome in SHADOW_OUTCOMES:  # born at zero, so that rate() sees the first one
            self.shadow.labels(outcome)
        self.gpu_reserved = Gauge("vampire_gpu_memory_reserved_bytes",
                                  "CUDA memory held by the caching allocator", ["device"],
                                  multiprocess_mode="livesum", **on)

    def record_model(self, version: str, runtime: str) -> None:
        self.model_info.labels(version, runtime).set(1)

    def update_gpu_memory(self) -> None:
        """CUDA memory per device, only if this process already uses torch with CUDA."""
        torch = sys.modules.get("torch")  # an ONNX-only worker never imports torch for this
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        for index in range(torch.cuda.device_count()):
            self.gpu_allocated.labels(str(index)).set(torch.cuda.memory_allocated(index))
            self.gpu_reserved.labels(str(index)).set(torch.cuda.memory_reserved(index))

    def exposition(self, openmetrics_format: bool = False) -> bytes:
        """The text a scrape reads: this instance alone, or every worker's files added up.

        In the OpenMetrics format (``openmetrics_format``) when the scraper asks for it: the
        only one that carries exemplars.
        """
        self.update_gpu_memory()
        render = openmetrics.generate_latest if openmetrics_format else generate_latest
        folder = os.environ.get(MULTIPROC_ENV)
        if not folder:
            return render(self.registry)
        workers = CollectorRegistry()
        MultiProcessCollector(workers, path=folder)
        return render(workers)


def negotiate(accept: str | None) -> tuple[bool, str]:
    """Does the scraper's ``Accept`` header ask for OpenMetrics? And the content type to send."""
    if choose_encoder(accept or "")[1].startswith("application/openmetrics-text"):
        return True, openmetrics.CONTENT_TYPE_LATEST
    return False, CONTENT_TYPE_LATEST


Queued = tuple[float, np.ndarray]  # (perf_counter when queued, portrait)


class DriftWatch:
    """Drift windows for the inputs (cheek colour) and the answers (P(vampire)).

    Its references take about a second to compute, so ``calibrate`` runs once the service is
    already ready: watching for drift never delays a cold start. Until then, batches pass
    unwatched.
    """

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
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
            self.metrics.drift.labels(name).set(0.0)
        self.windows = windows  # one assignment: the batcher's thread sees all or nothing

    def observe(self, images: np.ndarray, predictions: Sequence[Prediction]) -> None:
        """Add a batch to the windows; a watcher's fault must never fail a traveller."""
        try:
            for name, window in self.windows.items():
                window.add(cheek_saturation(images) if name == "input" else
                           [p.probability if p.label == "vampire" else 1 - p.probability
                            for p in predictions])
                self.metrics.drift.labels(name).set(window.score())
        except Exception:
            log.exception("drift watch failed on a batch")


def instrument_batches(predict: Callable[[np.ndarray], list[Prediction]],
                       metrics: ServiceMetrics, watch: DriftWatch | None = None,
                       ) -> Callable[[Sequence[Queued]], list[Prediction]]:
    """Wrap a batch predictor: record queue wait, batch size, inference time and verdicts."""
    def run(items: Sequence[Queued]) -> list[Prediction]:
        start = time.perf_counter()
        for queued, _ in items:
            metrics.queue_seconds.observe(start - queued)
        metrics.batch_size.observe(len(items))
        images = np.stack([image for _, image in items])
        predictions = predict(images)
        metrics.inference_seconds.observe(time.perf_counter() - start)
        for prediction in predictions:
            metrics.predictions.labels(prediction.label).inc()
            metrics.confidence.labels(prediction.label).observe(prediction.probability)
        if watch is not None:
            watch.observe(images, predictions)
        return predictions

    return run


def method_label(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else "other"


def route_label(scope: Scope, known: set[str]) -> str:
    """The route template; a refused request that never reached routing keeps a known path."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    return scope["path"] if scope["path"] in known else "unmatched"


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request by route, method and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, known_paths: set[str]):
        self.app, self.metrics, self.known = app, metrics, known_paths

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
            labels = (route_label(scope, self.known), method_label(scope), str(status))
            self.metrics.requests.labels(*labels).inc()
            request_id = scope.get(REQUEST_ID)
            self.metrics.request_seconds.labels(*labels).observe(
                time.perf_counter() - start,
                exemplar={"request_id": request_id} if request_id else None)


def add_metrics(app: FastAPI, route: bool = True) -> ServiceMetrics:
    """Create the app's metrics, count every request, and expose ``GET /metrics`` on the app
    itself when ``route`` (without it, ``metrics_port.MetricsPort`` serves them elsewhere).

    Call after the other middleware, so that the outermost layer also counts what they refuse.
    """
    metrics = app.state.metrics = ServiceMetrics()

    if route:
        @app.get("/metrics", include_in_schema=False)
        async def scrape(request: Request) -> Response:
            # Rendering many series (or reading many workers' files) takes a while: off the loop.
            wanted, content_type = negotiate(request.headers.get("accept"))
            text = await (anyio.to_thread.run_sync(metrics.exposition, True) if wanted else
                          anyio.to_thread.run_sync(metrics.exposition))
            return Response(text, headers={"Content-Type": content_type})

    for route in app.routes:  # a series born at zero lets rate() see its very first request
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and getattr(route, "include_in_schema", False):
                metrics.requests.labels(route.path, method, "200")
    app.add_middleware(RequestMetrics, metrics=metrics,
                       known_paths={getattr(r, "path", "") for r in app.routes})
    return metrics
