"""The micro-batcher: many travellers, one model call.

Introduced in Chapter 6.

A model call has a fixed cost (Python, the runtime's dispatch, a thread pool waking up) and a
cost per image that shrinks with the batch. Requests arrive one image at a time, so the batcher
holds each for at most ``max_wait_s`` while others join it, up to ``max_batch_size``, runs the
whole group in one call on a worker thread (never on the event loop), and hands every caller its
own row of the answer. One model call runs at a time, so the threads of the runtime never fight
each other for the cores.

If a batch fails, the batcher runs its items one by one, so a single poisoned request only fails
its own caller. A request whose caller has gone (its future cancelled) is dropped before it
reaches the model; a group of requests is queued whole or not at all (``submit_all``); at
``stop()`` every waiting caller gets a 503, and if the worker ever dies, ``running`` turns false
so that readiness can say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from vampire_detector.service.errors import ServiceError

log = logging.getLogger("vampire_detector.service")
Item = TypeVar("Item")
Result = TypeVar("Result")


class QueueFull(Exception):
    """More requests are waiting than the service agreed to hold; the caller should retry."""


def stopped() -> ServiceError:
    return ServiceError(503, "shutting_down", "the detector is shutting down; retry on "
                        "another replica")


@dataclass
class BatchStats:
    calls: int = 0  # model calls made
    items: int = 0  # requests answered through them
    sizes: list[int] = field(default_factory=list)  # the last batch sizes, for the curious


class MicroBatcher(Generic[Item, Result]):
    """Groups concurrent ``submit`` calls into calls of ``run_batch(items) -> results``."""

    def __init__(self, run_batch: Callable[[Sequence[Item]], Sequence[Result]], *,
                 max_batch_size: int = 16, max_wait_s: float = 0.002, max_queue: int = 256):
        if max_batch_size < 1 or max_wait_s < 0 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be >= 1, max_wait_s >= 0")
        self.run_batch = run_batch
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_s
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] = asyncio.Queue(
            max_queue)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._worker: asyncio.Task[None] | None = None
        self._in_flight: list[tuple[Item, asyncio.Future[Result]]] = []
        self._stopping = False

    @property
    def running(self) -> bool:
        """Started, not stopped, and its worker alive (a crashed worker would answer no one)."""
        return (self._worker is not None and not self._worker.done()
                and not self._stopping)

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._serve(), name="micro-batcher")
            self._worker.add_done_callback(self._worker_ended)

    def _worker_ended(self, worker: asyncio.Task[None]) -> None:
        """A worker that dies on its own fails its callers at once, rather than never."""
        if worker.cancelled():
            return
        log.error("the micro-batcher's worker died", exc_info=worker.exception())
        self._fail_waiting(ServiceError(503, "batcher_failed", "the detector's batcher "
                                        "failed; retry on another replica"))

    def _fail_waiting(self, error: Exception) -> None:
        waiting = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        for _, future in [*self._in_flight, *waiting]:
            _settle(future, error=error)

    async def stop(self) -> None:
        """Stop taking batches, answer whoever is still waiting with a 503, free the thread."""
        self._stopping = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        self._fail_waiting(stopped())
        self._executor.shutdown(wait=True)

    async def submit(self, item: Item) -> Result:
        """Queue ``item`` and wait for its own result (or its own exception)."""
        (result,) = await self.submit_all([item])
        return result

    async def submit_all(self, items: Sequence[Item]) -> list[Result]:
        """Queue all ``items`` or none (``QueueFull``), and wait for their results, in order.

        All or none: a request refused for want of room must not leave part of itself queued
        to cost a model call that nobody will read.
        """
        if self._worker is None and not self._stopping:
            raise RuntimeError("start() the batcher before submitting")
        if not self.running:
            raise stopped() if self._stopping else ServiceError(
                503, "batcher_failed", "the detector's batcher failed; retry on another replica")
        room = self._queue.maxsize - self._queue.qsize()
        if len(items) > room:
            raise QueueFull(f"{self._queue.qsize()} of {self._queue.maxsize} places are taken")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Result]] = [loop.create_future() for _ in items]
        for item, future in zip(items, futures, strict=True):
            self._queue.put_nowait((item, future))
        try:
            return list(await asyncio.gather(*futures))
        except asyncio.CancelledError:  # the caller gave up: drop what has not run yet
            for future in futures:
                future.cancel()
            raise

    async def _collect(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        """Wait for one request, then gather others until the batch is full or time is up."""
        batch.append(await self._queue.get())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
                break

    async def _serve(self) -> None:
        while True:
            self._in_flight = []  # kept on self, so that stop() can answer its callers
            await self._collect(self._in_flight)
            waiting = [(item, future) for item, future in self._in_flight
                       if not future.cancelled()]  # callers that gave up cost nothing
            if waiting:
                await self._answer(waiting)

    async def _call(self, items: Sequence[Item]) -> Sequence[Result]:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self.run_batch, items)
        finally:
            self.stats.calls += 1
            self.stats.items += len(items)
            self.stats.sizes = [*self.stats.sizes[-99:], len(items)]
        if len(results) != len(items):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)}")
        return results

    async def _answer(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._call([item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            for item, future in batch:  # find the culprit: each alone
                await self._answer([(item, future)])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future, result: object = None,
            error: BaseException | None = None) -> None:
    if future.done():  # the caller gave up (disconnected) meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
