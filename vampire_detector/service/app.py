"""The detection service: an app factory, its lifespan, and its routes.

Introduced in Chapter 6.

    uvicorn --factory vampire_detector.service.app:create_app --port 8000

The lifespan handler starts the model loading on a worker thread and returns at once, so the
process answers ``/health`` (liveness: "I am running") immediately and ``/ready`` (readiness:
"send me traffic") only once the model is loaded and warmed. Requests go through the micro-
batcher, which runs the model off the event loop, one batch at a time.

Every request gets an id and one access-log line (``request_log``, Chapter 10); with
``VAMPIRE_SHADOW_MODEL_PATH`` set, a challenger judges a share of the traffic in the shadows
(``shadow``) without ever answering it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated

import anyio
import numpy as np
from fastapi import Depends, FastAPI, File, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from vampire_detector.portraits import make_portraits
from vampire_detector.predictor import Prediction
from vampire_detector.service.auth import (
    CALLER,
    HEADER,
    Admission,
    ApiKeys,
    Gatekeeper,
    TokenBuckets,
)
from vampire_detector.service.batcher import MicroBatcher, QueueFull
from vampire_detector.service.body_limit import BodyLimit
from vampire_detector.service.decoding import DecodeSlots, decode_upload
from vampire_detector.service.errors import REQUEST_ID, ServiceError, install_error_handlers
from vampire_detector.service.metrics import (
    DriftWatch,
    Queued,
    ServiceMetrics,
    add_metrics,
    instrument_batches,
)
from vampire_detector.service.metrics_port import MetricsPort
from vampire_detector.service.request_log import AccessLog, RequestLog, access_record, note
from vampire_detector.service.runtimes import LoadedModel, load_predictor
from vampire_detector.service.schemas import (
    BatchOut,
    ErrorBody,
    HealthOut,
    LabelOut,
    PredictionOut,
    ReadyOut,
)
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.service.shadow import Shadow
from vampire_detector.service.uploads import UploadLimits

log = logging.getLogger("vampire_detector.service")
Loader = Callable[[ServiceSettings], LoadedModel]
FORM_OVERHEAD = 65_536  # multipart boundaries and headers around the image bytes


@dataclass
class Service:
    """Everything a request needs, created by the lifespan handler and kept on ``app.state``."""

    settings: ServiceSettings
    limits: UploadLimits
    metrics: ServiceMetrics
    slots: DecodeSlots
    model: LoadedModel | None = None
    batcher: MicroBatcher[Queued, Prediction] | None = None
    failure: str | None = None  # why loading failed, if it did
    shadow: Shadow | None = None  # the challenger in the shadows, when one is set
    warmed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ready(self) -> bool:
        """Loaded, warmed, and its batcher still running (not stopping, not crashed)."""
        return self.warmed.is_set() and self.batcher is not None and self.batcher.running


def warm_up(model: LoadedModel, settings: ServiceSettings) -> None:
    """Run the batch sizes that traffic will bring, so the first traveller waits no longer."""
    images = make_portraits(settings.max_batch_size, seed=0, size=settings.image_size)[0]
    for _ in range(settings.warmup_batches):
        model.predictor.predict(images[:1])
        model.predictor.predict(images)


async def load_and_warm(service: Service, loader: Loader) -> None:
    """Load the model on a worker thread, warm it, then start the batcher and declare ready."""
    settings = service.settings
    try:
        model = await anyio.to_thread.run_sync(loader, settings)
        await anyio.to_thread.run_sync(warm_up, model, settings)
    except Exception as error:  # the process stays up to say why; /health turns unhealthy
        log.exception("could not load the model")
        service.failure = f"{type(error).__name__}: {error}"
        return
    watch = DriftWatch(service.metrics)
    batcher = MicroBatcher(instrument_batches(model.predictor.predict, service.metrics, watch),
                           max_batch_size=settings.max_batch_size,
                           max_wait_s=settings.max_wait_ms / 1000, max_queue=settings.max_queue)
    await batcher.start()
    service.model, service.batcher = model, batcher
    service.metrics.record_model(model.version, settings.runtime)
    service.warmed.set()
    log.info("ready: %s", model.version)
    try:
        await anyio.to_thread.run_sync(watch.calibrate, model.predictor, settings.image_size)
    except Exception:  # the detector serves on; only its drift gauges stay silent
        log.exception("the drift watch could not start")


def shadow_settings(settings: ServiceSettings) -> ServiceSettings:
    """The champion's settings, pointed at the challenger's ONNX file."""
    return settings.model_copy(update={"runtime": "onnx", "model_version": None,
                                       "model_path": settings.shadow_model_path})


async def load_shadow(service: Service, loader: Loader) -> None:
    """Load the challenger once the champion serves; if it cannot load, the champion serves on."""
    try:
        model = await anyio.to_thread.run_sync(loader, shadow_settings(service.settings))
    except Exception as error:
        log.exception("the shadow challenger could not load; the champion serves alone")
        service.shadow.fail(f"{type(error).__name__}: {error}")
        return
    service.shadow.start(model)
    log.info("shadow: %s", model.version)


async def load_all(service: Service, loader: Loader, shadow_loader: Loader) -> None:
    await load_and_warm(service, loader)
    if service.shadow is not None and service.failure is None:
        await load_shadow(service, shadow_loader)


def make_lifespan(settings: ServiceSettings, loader: Loader, shadow_loader: Loader,
                  background: bool, log_in_thread: bool):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        access_log = AccessLog(settings.log_format, queued=log_in_thread)
        if settings.access_log:
            access_log.start()
        service = app.state.service = Service(
            settings, UploadLimits.from_settings(settings), app.state.metrics,
            DecodeSlots(settings.max_decodes, settings.max_decodes_waiting))
        if settings.shadow_model_path is not None:
            service.shadow = Shadow(app.state.metrics.shadow, settings.shadow_share)
        loading = asyncio.create_task(load_all(service, loader, shadow_loader))
        if not background:
            await loading
        metrics_port = None
        if settings.metrics_port is not None:
            metrics_port = MetricsPort(app.state.metrics.exposition, settings.metrics_host,
                                       settings.metrics_port)
            metrics_port.start()
        app.state.metrics_port = metrics_port
        try:
            yield
        finally:
            if metrics_port is not None:
                metrics_port.stop()
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            if service.batcher is not None:
                await service.batcher.stop()
            if service.shadow is not None:
                await service.shadow.stop()
            access_log.stop()

    return lifespan


async def get_service(request: Request) -> Service:
    # async: FastAPI runs a plain ``def`` dependency on a worker thread, a hop per request.
    return request.app.state.service


async def ready_service(service: Annotated[Service, Depends(get_service)]) -> Service:
    """The service, or a 503 that tells the load balancer to send this request elsewhere."""
    if not service.ready:
        raise ServiceError(503, "not_ready", "the model is still loading; retry shortly")
    return service


ReadyService = Annotated[Service, Depends(ready_service)]
API_KEY = APIKeyHeader(name=HEADER, auto_error=False, scheme_name="api_key",
                       description="an API key the operator gave you")


async def caller(request: Request, key: Annotated[str | None, Security(API_KEY)]) -> str:
    """Who is asking: admitted by ``Admission`` before the body was read, or checked here."""
    admitted = request.scope.get(CALLER)
    if admitted is not None:
        return admitted
    address = request.client.host if request.client else "unknown"
    return request.app.state.gatekeeper.admit(key, address)


def make_gatekeeper(settings: ServiceSettings) -> Gatekeeper:
    buckets = (TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst)
               if settings.rate_limit_per_s > 0 else None)
    return Gatekeeper(ApiKeys.load(settings.api_keys_sha256, settings.api_keys_file), buckets)


async def read_upload(upload: UploadFile, service: Service) -> np.ndarray:
    """The portrait in one uploaded file, decoded on a thread when its header says it is large."""
    data = await upload.read(service.limits.max_bytes + 1)
    return await decode_upload(data, upload.content_type, service.limits, service.slots)


async def disconnected(request: Request) -> None:
    """Return once the client has gone. The body is read, so the next message says so."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def classify(service: Service, images: Sequence[np.ndarray],
                   request: Request) -> list[Prediction]:
    """Run the images through the batcher, all or none, unless the client leaves first."""
    queued = time.perf_counter()  # the batcher's metrics measure the wait from here
    answer = asyncio.ensure_future(service.batcher.submit_all([(queued, i) for i in images]))
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not answer.done():  # the client left: its images must never reach the model
            answer.cancel()
            await asyncio.wait({answer})
    try:
        return answer.result()
    except QueueFull as error:
        raise ServiceError(503, "busy", f"the detector is busy ({error}); retry "
                           "shortly") from error
    except asyncio.CancelledError:
        raise ServiceError(499, "client_closed_request", "the client left before its "
                           "answer was ready") from None


def shadow_copy(service: Service, request: Request, images: Sequence[np.ndarray],
                predictions: Sequence[Prediction]) -> None:
    """Once the champion has answered, hand a copy to the shadow challenger (never waits)."""
    if service.shadow is not None:
        service.shadow.offer(request.scope.get(REQUEST_ID, ""), images, predictions,
                             access_record(request.scope))


ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in {
    400: "a malformed form (for example, more image parts than the route takes)",
    401: "no API key (when the service requires keys)", 403: "an API key that is not valid",
    429: "over the rate limit; retry after Retry-After seconds",
    413: "the upload is too large", 415: "not a PNG, JPEG or WebP image",
    422: "not a usable image (corrupt, truncated, a decompression bomb, too small)",
    503: "the model is not ready yet, or the queue is full"}.items()}


def body_limits(settings: ServiceSettings) -> dict[str, int]:
    return {"/predict": settings.max_upload_bytes + FORM_OVERHEAD,
            "/predict/batch": settings.max_batch_files * settings.max_upload_bytes + FORM_OVERHEAD}


def form_limits(files: int) -> dict[str, int]:
    """Multipart limits: ``files`` file parts, a few small text fields (Starlette allows 1,000)."""
    return {"max_files": files, "max_fields": 8, "max_part_size": 4096}


def add_prediction_routes(app: FastAPI, settings: ServiceSettings) -> None:
    gatekeeper = app.state.gatekeeper
    guarded = [Security(caller)] if gatekeeper.active else []

    @app.post("/predict", response_model=PredictionOut, responses=ERRORS,
              summary="Is the traveller in this portrait a vampire?", dependencies=guarded,
              form_limits=form_limits(1))  # a second image is refused, not silently dropped
    async def predict(request: Request, service: ReadyService,
                      image: Annotated[UploadFile, File(description="a PNG, JPEG or WebP "
                                                        "portrait")]) -> PredictionOut:
        start = time.perf_counter()
        pixels = [await read_upload(image, service)]
        (prediction,) = await classify(service, pixels, request)
        note(request.scope, label=prediction.label,
             probability=round(prediction.probability, 4))
        shadow_copy(service, request, pixels, [prediction])
        return PredictionOut(label=prediction.label, probability=prediction.probability,
                             model_version=service.model.version,
                             latency_ms=round((time.perf_counter() - start) * 1000, 3))

    @app.post("/predict/batch", response_model=BatchOut, responses=ERRORS,
              summary="Judge a whole coach of travellers at once", dependencies=guarded,
              # One more than allowed: a near miss gets the route's own clear 413 below; a
              # flood of parts is cut off while parsing, before it is spooled to disk.
              form_limits=form_limits(settings.max_batch_files + 1))
    async def predict_batch(request: Request, service: ReadyService,
                            images: Annotated[list[UploadFile], File(
                                description="up to max_batch_files portraits")]) -> BatchOut:
        start = time.perf_counter()
        if len(images) > service.settings.max_batch_files:
            raise ServiceError(413, "too_many_files", f"send at most "
                               f"{service.settings.max_batch_files} images per request")
        pixels = []
        for index, upload in enumerate(images):
            try:
                pixels.append(await read_upload(upload, service))
            except ServiceError as error:
                raise ServiceError(error.status, error.code,
                                   f"images[{index}]: {error.message}") from error
        predictions = await classify(service, pixels, request)
        note(request.scope, count=len(predictions),
             labels=dict(Counter(p.label for p in predictions)))
        shadow_copy(service, request, pixels, predictions)
        return BatchOut(predictions=[LabelOut(label=p.label, probability=p.probability)
                                     for p in predictions],
                        model_version=service.model.version,
                        latency_ms=round((time.perf_counter() - start) * 1000, 3))


def add_probe_routes(app: FastAPI) -> None:
    @app.get("/health", response_model=HealthOut, responses={503: {"model": ErrorBody}},
             summary="Liveness: is the process able to work at all?")
    async def health(service: Annotated[Service, Depends(get_service)]) -> HealthOut:
        if service.failure is not None:
            raise ServiceError(503, "model_failed", service.failure)
        return HealthOut()

    @app.get("/ready", response_model=ReadyOut, responses={503: {"model": ErrorBody}},
             summary="Readiness: is the model loaded and warmed?",
             response_model_exclude_none=True)  # no shadow, no shadow_version
    async def ready(service: ReadyService) -> ReadyOut:
        # The challenger never decides readiness: a missing one leaves the champion serving.
        return ReadyOut(model_version=service.model.version, runtime=service.settings.runtime,
                        shadow_version=service.shadow.version if service.shadow else None)


def create_app(settings: ServiceSettings | None = None, *, loader: Loader = load_predictor,
               shadow_loader: Loader = load_predictor, load_in_background: bool = True,
               log_in_thread: bool = True) -> FastAPI:
    """The service; with no arguments, configured from ``VAMPIRE_*`` environment variables.

    ``loader`` builds the model from the settings (tests pass a fake), ``shadow_loader`` the
    shadow challenger from them, pointed at ``shadow_model_path``. With
    ``load_in_background=False`` the lifespan waits for the model, for platforms such as AWS
    Lambda that have no readiness probe; with ``log_in_thread=False`` the access log's lines
    are written by the request rather than queued for a writer thread (Lambda again, which
    freezes the process between invocations).
    """
    settings = settings or ServiceSettings()
    docs = {} if settings.docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="Dracula's vampire detector", version="1.0",
                  description="Upload a traveller's portrait; learn whether they are a vampire.",
                  lifespan=make_lifespan(settings, loader, shadow_loader, load_in_background,
                                         log_in_thread),
                  **docs)
    app.state.gatekeeper = gatekeeper = make_gatekeeper(settings)
    limits = body_limits(settings)
    app.add_middleware(BodyLimit, limits=limits, idle_timeout_s=settings.body_idle_timeout_s)
    if gatekeeper.active:  # outside BodyLimit: strangers are refused before their body is read
        app.add_middleware(Admission, gatekeeper=gatekeeper, paths=limits)
    install_error_handlers(app)
    add_probe_routes(app)
    add_prediction_routes(app, settings)
    # last: the outermost middleware also counts what BodyLimit refuses
    add_metrics(app, route=settings.metrics_port is None)
    # outermost of all: every other layer reads the request id it gives, and it logs them all
    app.add_middleware(RequestLog, known_paths={getattr(r, "path", "") for r in app.routes},
                       version=lambda: serving_version(app), enabled=settings.access_log)
    return app


def serving_version(app: FastAPI) -> str | None:
    """The champion's version, once loaded: every log line names the model that answered."""
    service = getattr(app.state, "service", None)
    return service.model.version if service is not None and service.model else None


def get_paths(app: FastAPI | None = None) -> set[str]:
    """The GET paths the service answers (built, not started: no model is loaded).

    Deployment files point probes at these; their checks ask here rather than repeat the list.
    """
    app = app or create_app()
    return {route.path for route in app.routes if "GET" in getattr(route, "methods", ())}
