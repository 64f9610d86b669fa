"""The micro-batcher, with a fake model: grouping, timing out, isolation, back-pressure."""

from __future__ import annotations

import asyncio
import threading

import pytest

from vampire_detector.service.batcher import MicroBatcher, QueueFull
from vampire_detector.service.errors import ServiceError


class Model:
    """Records each batch; can hold its calls until ``release`` is set, and fail on an item."""

    def __init__(self, fail_on: int | None = None):
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_on = fail_on

    def __call__(self, items):
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        self.entered.set()
        assert self.release.wait(10)
        if self.fail_on in items:
            raise ValueError("poisoned")
        return [item * 10 for item in items]


async def run(batcher: MicroBatcher, items) -> list:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)
    finally:
        await batcher.stop()


async def busy_with(batcher: MicroBatcher, model: Model, item: int) -> asyncio.Future:
    """Start ``batcher``, submit ``item``, and return once the model is inside that call.

    The model must be held (``model.release`` cleared): what is submitted next has to wait.
    """
    await batcher.start()
    first = asyncio.ensure_future(batcher.submit(item))
    await asyncio.get_running_loop().run_in_executor(None, model.entered.wait, 10)
    return first


def test_concurrent_requests_share_calls_and_get_their_own_answers():
    model = Model()
    results = asyncio.run(run(MicroBatcher(model, max_batch_size=4, max_wait_s=30), range(8)))
    assert results == [i * 10 for i in range(8)]
    assert [len(batch) for batch in model.batches] == [4, 4]  # full batches never wait
    assert threading.get_ident() not in model.threads  # never on the event loop


def test_a_lone_request_goes_after_max_wait():
    model = Model()
    assert asyncio.run(run(MicroBatcher(model, max_batch_size=64, max_wait_s=0.01), [7])) == [70]
    assert model.batches == [[7]]


def test_requests_that_arrive_during_a_call_form_the_next_batch():
    model = Model()
    model.release.clear()
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0)

    async def main():
        first = await busy_with(batcher, model, 1)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(2, 6)]
        await asyncio.sleep(0)  # let them queue
        model.release.set()
        answers = await asyncio.gather(first, *rest)
        await batcher.stop()
        return answers

    assert asyncio.run(main()) == [10, 20, 30, 40, 50]
    assert model.batches == [[1], [2, 3, 4, 5]]
    assert batcher.stats.calls == 2 and batcher.stats.items == 5


def test_a_failing_item_only_fails_its_own_caller():
    model = Model(fail_on=3)
    results = asyncio.run(run(MicroBatcher(model, max_batch_size=5, max_wait_s=30), range(5)))
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 10, 20, 40]


def test_a_full_queue_refuses_instead_of_growing():
    model = Model()
    model.release.clear()
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0, max_queue=2)

    async def main():
        first = await busy_with(batcher, model, 0)
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(3)
        model.release.set()
        return await asyncio.gather(first, *waiting)

    assert asyncio.run(main()) == [0, 10, 20]


def test_stop_answers_everyone_still_waiting():
    model = Model()
    model.release.clear()
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0)

    async def main():
        calls = [await busy_with(batcher, model, 0),
                 *(asyncio.ensure_future(batcher.submit(i)) for i in (1, 2))]
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0)
        model.release.set()
        await stopping
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(result, ServiceError) and result.status == 503
               and result.code == "shutting_down" for result in results[1:])


def test_a_model_that_loses_results_is_an_error_for_its_callers():
    batcher = MicroBatcher(lambda items: [0], max_batch_size=2, max_wait_s=30)
    results = asyncio.run(run(batcher, [1, 2]))
    assert results[0] == 0 and results[1] == 0  # alone, each item gets its one result
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: items, max_batch_size=0)


def test_submit_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="start"):
        asyncio.run(MicroBatcher(lambda items: items).submit(1))


def test_a_group_that_does_not_fit_is_refused_whole():
    model = Model()
    model.release.clear()
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0, max_queue=2)

    async def main():
        first = await busy_with(batcher, model, 0)
        with pytest.raises(QueueFull):
            await batcher.submit_all([1, 2, 3])  # two places: none of the three may queue
        model.release.set()
        await first
        await batcher.stop()

    asyncio.run(main())
    assert model.batches == [[0]]


def test_a_caller_that_gives_up_costs_no_model_call():
    model = Model()
    model.release.clear()
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0)

    async def main():
        first = await busy_with(batcher, model, 0)
        gone = asyncio.ensure_future(batcher.submit_all([1, 2]))
        await asyncio.sleep(0)
        gone.cancel()
        model.release.set()
        await first
        await batcher.submit(3)
        await batcher.stop()

    asyncio.run(main())
    assert model.batches == [[0], [3]]


def test_a_dead_worker_fails_its_callers_and_stops_running():
    batcher = MicroBatcher(lambda items: items, max_batch_size=1, max_wait_s=0)

    async def broken(batch):  # a bug in the batcher itself, met with a caller waiting
        batch.append(await batcher._queue.get())
        raise RuntimeError("a bug in the batcher")

    batcher._collect = broken

    async def main():
        await batcher.start()
        assert batcher.running
        with pytest.raises(ServiceError) as waiting:
            await asyncio.wait_for(batcher.submit(1), 5)
        assert not batcher.running
        with pytest.raises(ServiceError) as later:
            await batcher.submit(2)
        await batcher.stop()
        return waiting.value, later.value

    for error in asyncio.run(main()):
        assert (error.status, error.code) == (503, "batcher_failed")
