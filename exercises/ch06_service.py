"""Chapter 6 exercises: the detection service.

Fill in the functions, the classes and the two routes below, then grade them with

    pytest autograder/test_ch06_service.py
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image, ImageOps, UnidentifiedImageError

from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.predictor import Predictor
from vampire_detector.service.errors import ServiceError, error_response, install_error_handlers

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}  # declared content type -> Pillow format


def read_portrait(data: bytes, content_type: str | None, *, max_bytes: int = 1_000_000,
                  max_pixels: int = 4096 * 4096, size: int = IMAGE_SIZE) -> np.ndarray:
    """Exercise 6.1: untrusted upload bytes to an RGB ``uint8`` portrait ``(size, size, 3)``.

    Refuse with ``ServiceError(status, code, message)``: 413 when ``data`` has more than
    ``max_bytes`` bytes; 415 when ``content_type`` is not one of ``FORMATS``, or when the bytes
    hold an image of another format than the one declared; 422 when the bytes are not a PNG or
    JPEG image at all, are truncated or corrupt, or would decode to more than ``max_pixels``
    pixels (a decompression bomb: refuse it *before* decoding). Convert grayscale, palette and
    RGBA images to RGB, crop an oblong image to its centred square, and scale it to ``size`` x
    ``size``.
    """
    # Hint: Image.open only reads the header; image.size is known before any pixel is decoded.
    # Hint: image.load() decodes every pixel, and raises OSError on a truncated file.
    raise NotImplementedError(
        "Exercise 6.1 is not implemented yet: write it in exercises/ch06_service.py")


class MicroBatcher:
    """Exercise 6.2: group concurrent ``submit`` calls into calls of ``run_batch(items)``.

    ``run_batch`` takes a list of items and returns one result per item, in order. A batch
    closes when it holds ``max_batch_size`` items or when ``max_wait_s`` has passed since its
    first item arrived. ``run_batch`` must run on a worker thread, never on the event loop.
    When a batch fails, every caller must still get its own outcome: run the items one by
    one, so that only the caller of the bad item gets the exception.
    """

    def __init__(self, run_batch: Callable[[list[Any]], Sequence[Any]], *,
                 max_batch_size: int = 8, max_wait_s: float = 0.005):
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1)  # one model call at a time
        self.worker: asyncio.Task | None = None

    async def start(self) -> None:
        self.worker = asyncio.create_task(self.serve())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
        self.executor.shutdown(wait=True)

    async def submit(self, item: Any) -> Any:
        """Queue ``item`` and return its own result (or raise its own exception)."""
        # Hint: a future from asyncio.get_running_loop().create_future() is one caller's answer.
        raise NotImplementedError(
            "Exercise 6.2 is not implemented yet: write it in exercises/ch06_service.py")

    async def serve(self) -> None:
        """The worker: forever, collect one batch from the queue and answer its callers."""
        # Hint: asyncio.wait_for(self.queue.get(), timeout) raises asyncio.TimeoutError.
        # Hint: loop.run_in_executor(self.executor, fn, arg) runs fn(arg) on the worker thread.
        raise NotImplementedError(
            "Exercise 6.2 is not implemented yet: write it in exercises/ch06_service.py")

    async def answer(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        """Run one batch on the worker thread and settle each caller's future."""
        raise NotImplementedError(
            "Exercise 6.2 is not implemented yet: write it in exercises/ch06_service.py")


class Warden:
    """Exercise 6.3: warms the model, and knows whether the service may take traffic.

    ``ready`` is False until ``warm`` has run the predictor on the warm-up images
    ``rounds`` times (so that the first traveller does not pay for first-call costs), and True
    after that. If warming fails, ``ready`` stays False and ``warm`` lets the error propagate.
    """

    def __init__(self, predictor: Predictor, warmup_images: np.ndarray, rounds: int = 2):
        self.predictor = predictor
        self.warmup_images = warmup_images
        self.rounds = rounds
        self.warmed = False

    def warm(self) -> None:
        raise NotImplementedError(
            "Exercise 6.3 is not implemented yet: write it in exercises/ch06_service.py")

    @property
    def ready(self) -> bool:
        raise NotImplementedError(
            "Exercise 6.3 is not implemented yet: write it in exercises/ch06_service.py")


def create_app(load: Callable[[], Predictor], *, max_bytes: int = 1_000_000,
               max_batch_size: int = 8, max_wait_s: float = 0.005) -> FastAPI:
    """The service: ``load`` builds the predictor once, in the lifespan, off the event loop."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predictor = await anyio.to_thread.run_sync(load)
        app.state.predictor = predictor
        app.state.warden = Warden(predictor, np.zeros((max_batch_size, 64, 64, 3), np.uint8))
        warming = asyncio.create_task(anyio.to_thread.run_sync(app.state.warden.warm))
        yield
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await warming

    app = FastAPI(title="Dracula's vampire detector (exercises)", lifespan=lifespan)
    install_error_handlers(app)  # ServiceError -> {"error": {"code": ..., "message": ...}}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        """Exercise 6.3: 200 ``{"ready": true}`` once the warden is ready, else a 503 error."""
        # Hint: error_response(status, code, message) builds the service's one error body.
        raise NotImplementedError(
            "Exercise 6.3 is not implemented yet: write it in exercises/ch06_service.py")

    @app.post("/predict")
    async def predict(request: Request,
                      image: Annotated[UploadFile, File()]) -> dict[str, object]:
        """Exercise 6.4: the label, its probability and the latency for one uploaded portrait.

        Validate the upload with your ``read_portrait`` (Exercise 6.1); its ``ServiceError``
        becomes the error response by itself. Run the predictor (``request.app.state
        .predictor``) off the event loop. Answer ``{"label", "probability", "latency_ms"}``.
        """
        # Hint: anyio.to_thread.run_sync(fn, *args) runs fn on a worker thread and awaits it.
        raise NotImplementedError(
            "Exercise 6.4 is not implemented yet: write it in exercises/ch06_service.py")

    return app
