"""A challenger in the shadows: it judges a copy of the traffic, and nobody hears its verdict.

Introduced in Chapter 10 (the release chapter, 13, puts it to work).

With ``VAMPIRE_SHADOW_MODEL_PATH`` set, the service loads a second ONNX model beside the
champion. Once the champion has answered a request, a share of the requests
(``VAMPIRE_SHADOW_SHARE``, chosen by a stable hash of the request id, as the canary router of
``vampire_detector.rollout`` does) is handed to the challenger, on a thread of its own, and the
two verdicts are compared and counted in ``vampire_shadow_comparisons_total{outcome}`` and
written to the request's log line (``shadow_label``, ``shadow_version``), or to a ``shadow``
line of its own with the same ``request_id`` when the comparison ends after the request's line.

The champion never waits for it: handing over a request is a ``put_nowait`` on a bounded
queue; when the queue is full the comparison is skipped (and counted ``skipped``), and a
challenger that is slow, raises, or never loaded costs the travellers nothing (``error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter as PromCounter

from vampire_detector.predictor import Prediction
from vampire_detector.rollout import bucket
from vampire_detector.service.request_log import AccessRecord, log_event
from vampire_detector.service.runtimes import LoadedModel

log = logging.getLogger("vampire_detector.service.shadow")
QUEUE = 32  # requests waiting for the challenger at most; more are skipped
BUCKETS = 10_000


@dataclass
class Job:
    request_id: str
    images: Sequence[np.ndarray]
    champion: Sequence[Prediction]
    record: AccessRecord | None


class Shadow:
    """The challenger, its bounded queue and its one worker (``start``/``stop`` on the loop)."""

    def __init__(self, counter: PromCounter, share: float, queue_size: int | None = None):
        self.counter, self.share = counter, share
        self.model: LoadedModel | None = None
        self.failure: str | None = None  # why the challenger could not load, if it could not
        self._queue: asyncio.Queue[Job] = asyncio.Queue(queue_size or QUEUE)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shadow")
        self._worker: asyncio.Task[None] | None = None

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def chosen(self, request_id: str) -> bool:
        """Whether this request goes to the challenger: the same answer on every replica."""
        return bucket(request_id, BUCKETS) < round(self.share * BUCKETS)

    def start(self, model: LoadedModel) -> None:
        self.model = model
        if self._worker is None:
            self._worker = asyncio.create_task(self._serve(), name="shadow")

    def fail(self, reason: str) -> None:
        """The challenger could not load: every chosen request now counts as an error."""
        self.failure = reason

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        # a challenger stuck in its model call must not hold the shutdown
        self._executor.shutdown(wait=False, cancel_futures=True)

    def offer(self, request_id: str, images: Sequence[np.ndarray],
              champion: Sequence[Prediction], record: AccessRecord | None = None) -> None:
        """Hand a copy of an answered request to the challenger, if chosen. Never waits."""
        if not self.chosen(request_id):
            return
        if self.failure is not None:
            self.counter.labels("error").inc(len(images))
            return
        if self._worker is None or self._worker.done():  # still loading, or stopped
            self.counter.labels("skipped").inc(len(images))
            return
        try:
            self._queue.put_nowait(Job(request_id, images, champion, record))
        except asyncio.QueueFull:
            self.counter.labels("skipped").inc(len(images))

    async def _serve(self) -> None:
        while True:
            job = await self._queue.get()
            await self._compare(job)

    async def _compare(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            verdicts = await loop.run_in_executor(self._executor, self.model.predictor.predict,
                                                  np.stack(job.images))
            if len(verdicts) != len(job.images):
                raise RuntimeError(f"{len(verdicts)} verdicts for {len(job.images)} portraits")
        except Exception as error:  # counted and logged, never felt at the gate
            log.warning("the shadow challenger failed on request %s: %s", job.request_id, error)
            self.counter.labels("error").inc(len(job.images))
            self._tell(job, {"shadow_error": type(error).__name__})
            return
        agree = sum(ours.label == theirs.label
                    for ours, theirs in zip(job.champion, verdicts, strict=True))
        self.counter.labels("agree").inc(agree)
        self.counter.labels("disagree").inc(len(verdicts) - agree)
        fields: dict[str, object] = (
            {"shadow_label": verdicts[0].label,
             "shadow_probability": round(verdicts[0].probability, 4)}
            if len(verdicts) == 1 else
            {"shadow_labels": dict(Counter(v.label for v in verdicts))})
        self._tell(job, fields)

    def _tell(self, job: Job, fields: dict[str, object]) -> None:
        """Into the request's line if it is not written yet, else a ``shadow`` line."""
        fields = {**fields, "shadow_version": self.version}
        if job.record is not None and not job.record.written:
            job.record.fields.update(fields)
        else:
            log_event("shadow", request_id=job.request_id, **fields)
