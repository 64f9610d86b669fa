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
    # BEGIN SOLUTION
    # Hint: Image.open only reads the header; image.size is known before any pixel is decoded.
    # Hint: image.load() decodes every pixel, and raises OSError on a truncated file.
    if len(data) > max_bytes:
        raise ServiceError(413, "too_large", f"images may be at most {max_bytes:,} bytes")
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in FORMATS:
        raise ServiceError(415, "unsupported_media_type", "send a PNG or JPEG image")
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS.values()))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise ServiceError(422, "undecodable", "the file is not a PNG or JPEG image") from error
    if image.format != FORMATS[media]:
        raise ServiceError(415, "format_mismatch", f"the file was declared as {media} but holds "
                           f"a {image.format} image")
    width, height = image.size
    if width * height > max_pixels:
        raise ServiceError(422, "too_many_pixels", f"{width}x{height} is too many pixels")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as error:
        raise ServiceError(422, "undecodable", "the image is truncated or corrupt") from error
    rgb = image.convert("RGB")
    return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR), np.uint8)
    # END SOLUTION


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
        # BEGIN SOLUTION
        # Hint: a future from asyncio.get_running_loop().create_future() is one caller's answer.
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return await future
        # END SOLUTION

    async def serve(self) -> None:
        """The worker: forever, collect one batch from the queue and answer its callers."""
        # BEGIN SOLUTION
        # Hint: asyncio.wait_for(self.queue.get(), timeout) raises asyncio.TimeoutError.
        # Hint: loop.run_in_executor(self.executor, fn, arg) runs fn(arg) on the worker thread.
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                try:
                    timeout = max(deadline - loop.time(), 0)
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            await self.answer(batch)
        # END SOLUTION

    async def answer(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        """Run one batch on the worker thread and settle each caller's future."""
        # BEGIN SOLUTION
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self.run_batch,
                                                 [item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(error)
                return
            for one in batch:  # find the bad item: each alone
                await self.answer([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        # END SOLUTION


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
        # BEGIN SOLUTION
        for _ in range(self.rounds):
            self.predictor.predict(self.warmup_images)
        self.warmed = True
        # END SOLUTION

    @property
    def ready(self) -> bool:
        # BEGIN SOLUTION
        return self.warmed
        # END SOLUTION


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
        # BEGIN SOLUTION
        # Hint: error_response(status, code, message) builds the service's one error body.
        if not request.app.state.warden.ready:
            return error_response(503, "not_ready", "the model is still warming up")
        return JSONResponse({"ready": True})
        # END SOLUTION

    @app.post("/predict")
    async def predict(request: Request,
                      image: Annotated[UploadFile, File()]) -> dict[str, object]:
        """Exercise 6.4: the label, its probability and the latency for one uploaded portrait.

        Validate the upload with your ``read_portrait`` (Exercise 6.1); its ``ServiceError``
        becomes the error response by itself. Run the predictor (``request.app.state
        .predictor``) off the event loop. Answer ``{"label", "probability", "latency_ms"}``.
        """
        # BEGIN SOLUTION
        # Hint: anyio.to_thread.run_sync(fn, *args) runs fn on a worker thread and awaits it.
        start = time.perf_counter()
        data = await image.read(max_bytes + 1)
        pixels = read_portrait(data, image.content_type, max_bytes=max_bytes)
        predictor = request.app.state.predictor
        (prediction,) = await anyio.to_thread.run_sync(predictor.predict, pixels[np.newaxis])
        return {"label": prediction.label, "probability": prediction.probability,
                "latency_ms": (time.perf_counter() - start) * 1000}
        # END SOLUTION

    return app
