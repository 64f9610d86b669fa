"""Where and how many uploads decode: on the event loop, or a bounded few on worker threads.

Introduced in Chapter 6.

Decoding a portrait is the service's costliest step after the model, and its cost follows the
size that the image's header declares, not the bytes that arrived. A small image decodes on the
event loop (a thread hop would cost more). A large one decodes on a worker thread, and only
``running`` of those at once: each may hold hundreds of megabytes while it decodes, so eight at
once could outgrow the pod. Up to ``waiting`` more wait their turn; beyond that the service is
busy, and says so with a 503 and ``Retry-After`` rather than queueing without end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio
import numpy as np

from vampire_detector.service.errors import ServiceError
from vampire_detector.service.uploads import (
    UploadLimits,
    decodes_inline,
    finish_portrait,
    open_portrait,
)


class DecodeSlots:
    """At most ``running`` large decodes at once, ``waiting`` more in line, the rest refused."""

    def __init__(self, running: int, waiting: int) -> None:
        self.running, self.waiting = running, waiting
        self._free = asyncio.Semaphore(running)
        self._queued = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked() and self._queued >= self.waiting:
            raise ServiceError(503, "busy", f"{self.running} large images are being decoded "
                               f"and {self._queued} are waiting; retry shortly")
        self._queued += 1
        try:
            await self._free.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._free.release()


async def decode_upload(data: bytes, content_type: str | None, limits: UploadLimits,
                        slots: DecodeSlots) -> np.ndarray:
    """The portrait in ``data``: header read here, pixels decoded where their size allows."""
    with open_portrait(data, content_type, limits) as image:
        if decodes_inline(image, data):
            return finish_portrait(image, data, limits)
        async with slots.slot():
            return await anyio.to_thread.run_sync(finish_portrait, image, data, limits)
