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
from PIL import Image, ImageOps

from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.predictor import Predictor
from vampire_detector.service.errors import ServiceError, error_response, install_error_handlers

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}  # declared content type -> its format
UNDECLARED = {"", "application/octet-stream"}  # no content type, or a generic one: no promise
# How each format's bytes begin. A phone's MPO photo is a JPEG with extra pictures appended:
# it begins like any JPEG, and Pillow opens it as format "MPO".
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def read_portrait(data: bytes, content_type: str | None, *, max_bytes: int = 1_000_000,
                  max_pixels: int = 4096 * 4096, size: int = IMAGE_SIZE) -> np.ndarray:
    """Exercise 6.1: untrusted upload bytes to an RGB ``uint8`` portrait ``(size, size, 3)``.

    The bytes say what they are (their first bytes, ``SIGNATURES``); the declared content type
    is only a hint, which may agree with them or be absent (``UNDECLARED``). Refuse with
    ``ServiceError(status, code, message)``:

    - 413 when ``data`` has more than ``max_bytes`` bytes;
    - 415 when ``content_type`` is declared but is not one of ``FORMATS``, when the bytes are a
      PNG declared as a JPEG or the other way round, or when an undeclared upload is neither;
    - 422 when bytes declared as a PNG or JPEG are no such image, or are empty, truncated or
      corrupt;
    - 422 when the image would decode to more than ``max_pixels`` pixels, decided from its
      header alone, before a single pixel is decoded.

    A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size, at a fraction of the cost: decode
    every JPEG at the smallest such scale that keeps both sides at least ``size`` pixels, and
    hold that reduced size, not the declared one, against ``max_pixels``. Convert grayscale,
    palette and RGBA images to RGB, crop an oblong image to its centred square, and scale it to
    ``size`` x ``size``.
    """
    # BEGIN SOLUTION
    # Hint: Image.open only reads the header; image.size is known before any pixel is decoded.
    # Hint: image.draft(None, (size, size)) picks a JPEG's reduced scale and changes
    # image.size to match, still without decoding; other formats ignore it.
    # Hint: image.load() decodes every pixel, and raises OSError on a truncated file.
    if len(data) > max_bytes:
        raise ServiceError(413, "too_large", f"images may be at most {max_bytes:,} bytes")
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in FORMATS and media not in UNDECLARED:
        raise ServiceError(415, "unsupported_media_type", f"send a PNG or JPEG image, not {media}")
    promised = FORMATS.get(media)
    found = next((kind for start, kind in SIGNATURES.items() if data.startswith(start)), None)
    if found is None and promised is None:
        raise ServiceError(415, "unsupported_media_type", "the file is neither a PNG nor a JPEG")
    if found is None:
        raise ServiceError(422, "undecodable", f"the file is not a {promised} image")
    if promised is not None and found != promised:
        raise ServiceError(415, "format_mismatch", f"the file was declared as {media} but "
                           f"holds a {found} image")
    try:
        image = Image.open(io.BytesIO(data), formats=[found])  # a JPEG may open as MPO
        image.draft(None, (size, size))
    except Exception as error:  # Pillow raises many kinds on crafted headers, bombs included
        raise ServiceError(422, "undecodable", f"the file is not a {found} image") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ServiceError(422, "too_many_pixels", f"{width}x{height} is more than the "
                           f"{max_pixels:,} pixels a portrait may decode to")
    try:
        image.load()
    except Exception as error:  # truncated, corrupt, or crafted to break the decoder
        raise ServiceError(422, "undecodable", "the image is truncated or corrupt") from error
    rgb = image.convert("RGB")
    return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR), np.uint8)
    # END SOLUTION


def full(max_queue: int) -> ServiceError:
    """The batcher's refusal when ``max_queue`` items already wait: busy, come back in 1 s."""
    return ServiceError(503, "full", f"{max_queue} portraits are already waiting for the "
                        "detector; retry shortly", retry_after=1)


def closed() -> ServiceError:
    """The batcher's answer once it is closed: this replica is going away."""
    return ServiceError(503, "closed", "the detector is shutting down; retry on another "
                        "replica", retry_after=1)


class MicroBatcher:
    """Exercise 6.2: group concurrent ``submit`` calls into calls of ``run_batch(items)``.

    ``run_batch`` takes a list of items and returns one result per item, in order; it must run
    on the worker thread (``self.executor``), never on the event loop. A batch goes to it as
    soon as ``max_batch_size`` items wait, or ``max_wait_s`` after the worker found its first
    item. When a batch fails, run its items one by one, so that only the caller of the bad item
    gets the exception. ``self.waiting`` holds the items not yet given to ``run_batch`` (a dict
    keeps its insertion order: the oldest first), each under its caller's future.
    """

    def __init__(self, run_batch: Callable[[list[Any]], Sequence[Any]], *,
                 max_batch_size: int = 8, max_wait_s: float = 0.005, max_queue: int = 64):
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.waiting: dict[asyncio.Future, Any] = {}  # a caller's future -> its item
        self.arrived = asyncio.Event()  # set when an item arrives (or at close)
        self.executor = ThreadPoolExecutor(max_workers=1)  # one model call at a time
        self.worker: asyncio.Task | None = None
        self.closed = False

    async def start(self) -> None:
        self.worker = asyncio.create_task(self.serve())

    async def submit(self, item: Any) -> Any:
        """Wait for ``item``'s own result (or raise its own exception).

        Refuse at once, raising ``full(...)``, when ``max_queue`` items are already waiting,
        and ``closed()`` once the batcher is closed. A caller that gives up (its task is
        cancelled, say because its client went away) takes its item out of ``waiting``: it
        never reaches ``run_batch``, and its place is free for the next caller.
        """
        # BEGIN SOLUTION
        # Hint: a future from asyncio.get_running_loop().create_future() is one caller's answer.
        # Hint: try/finally runs the finally block on cancellation (CancelledError) too.
        if self.closed:
            raise closed()
        if len(self.waiting) >= self.max_queue:
            raise full(self.max_queue)
        future = asyncio.get_running_loop().create_future()
        self.waiting[future] = item
        self.arrived.set()
        try:
            return await future
        finally:
            self.waiting.pop(future, None)  # gone already if the worker took it
        # END SOLUTION

    async def serve(self) -> None:
        """The worker: until the batcher is closed, collect one batch and answer its callers."""
        # BEGIN SOLUTION
        # Hint: clear self.arrived, then asyncio.wait_for(self.arrived.wait(), timeout) waits
        # for the next arrival, and raises asyncio.TimeoutError after `timeout` seconds.
        loop = asyncio.get_running_loop()
        while not self.closed:
            if not self.waiting:
                self.arrived.clear()
                await self.arrived.wait()
                continue
            closes_at = loop.time() + self.max_wait_s  # the first waiter's patience
            while len(self.waiting) < self.max_batch_size and not self.closed:
                left_s = closes_at - loop.time()
                if left_s <= 0:
                    break
                self.arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), left_s)
            oldest = list(self.waiting)[: self.max_batch_size]
            batch = [(self.waiting.pop(future), future) for future in oldest]
            if batch:
                await self.answer(batch)
        # END SOLUTION

    async def answer(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        """Run one batch on the worker thread and settle each caller's future."""
        # BEGIN SOLUTION
        # Hint: loop.run_in_executor(self.executor, fn, arg) runs fn(arg) on the worker thread.
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
            if not future.done():  # its caller may have gone meanwhile
                future.set_result(result)
        # END SOLUTION

    async def close(self) -> None:
        """Stop taking items: fail every waiting caller with ``closed()`` at once, let the batch
        that ``run_batch`` is running finish and answer its callers, then end the worker and
        shut its thread down."""
        # BEGIN SOLUTION
        self.closed = True
        for future in list(self.waiting):
            del self.waiting[future]
            if not future.done():
                future.set_exception(closed())
        self.arrived.set()  # wake the worker, so that it sees it is closed
        if self.worker is not None:
            await self.worker
        self.executor.shutdown(wait=True)
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
               max_batch_size: int = 8, max_wait_s: float = 0.005,
               max_queue: int = 64) -> FastAPI:
    """The service: ``load`` builds the predictor once, in the lifespan, off the event loop."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predictor = await anyio.to_thread.run_sync(load)
        app.state.predictor = predictor
        app.state.warden = Warden(predictor, np.zeros((max_batch_size, 64, 64, 3), np.uint8))
        # Your MicroBatcher (Exercise 6.2): each item is one portrait, each result a Prediction.
        app.state.batcher = MicroBatcher(lambda portraits: predictor.predict(np.stack(portraits)),
                                         max_batch_size=max_batch_size, max_wait_s=max_wait_s,
                                         max_queue=max_queue)
        await app.state.batcher.start()
        warming = asyncio.create_task(anyio.to_thread.run_sync(app.state.warden.warm))
        yield
        await app.state.batcher.close()  # waiting requests get its 503; the running batch ends
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

        Until the warden is ready, refuse with a 503 ``ServiceError`` (the client retries
        elsewhere) before reading anything. Validate the upload with your ``read_portrait``
        (Exercise 6.1); its ``ServiceError`` becomes the error response by itself. Send the
        portrait through the batcher (``request.app.state.batcher``, your Exercise 6.2), so that
        concurrent requests share model calls. Answer ``{"label", "probability",
        "latency_ms"}``, the latency measured from the start of the request, in milliseconds.
        """
        # BEGIN SOLUTION
        # Hint: time.perf_counter() counts seconds.
        start = time.perf_counter()
        if not request.app.state.warden.ready:
            raise ServiceError(503, "not_ready", "the model is still warming up; retry shortly")
        data = await image.read(max_bytes + 1)
        pixels = read_portrait(data, image.content_type, max_bytes=max_bytes)
        prediction = await request.app.state.batcher.submit(pixels)
        return {"label": prediction.label, "probability": prediction.probability,
                "latency_ms": (time.perf_counter() - start) * 1000}
        # END SOLUTION

    return app
