"""Chapter 6's probes: the submission's upload checks, batcher, warden and app, each put
through a scene built here with fake models that record what they see; the observations
(statuses, bodies, batches, threads, what was decoded) go back as plain data.

Nothing here waits without a limit: a batcher that never answers is reported as ``stuck``
with what it never did, in seconds, rather than left to the test's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import Any

import httpx
import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import ImageFile

from vampire_detector.detector import Detector, Predictor
from vampire_detector.service.errors import ServiceError

LIMIT_S = 5.0  # what any step of a scene may take; each takes milliseconds when right


def _ch06():
    return importlib.import_module("ch06_service")


class Stuck(Exception):
    """A step of a scene that did not finish within its limit."""


async def _within(awaitable: Awaitable, what: str, limit: float = LIMIT_S) -> Any:
    try:
        return await asyncio.wait_for(awaitable, limit)
    except asyncio.TimeoutError:
        raise Stuck(f"{what} never returned within {limit:g} s") from None


def _unfinished(error: BaseException | None) -> None:
    """A stub's NotImplementedError goes back as it is: the test names the exercise."""
    if isinstance(error, NotImplementedError):
        raise error


# Exercise 6.1 ------------------------------------------------------------------------------

@contextlib.contextmanager
def _decodes() -> Iterator[list[list[object]]]:
    """Every ``load()`` (a decode of pixels) of a Pillow image file meanwhile: format, size."""
    seen: list[list[object]] = []
    load = ImageFile.ImageFile.load

    def recording(image, *args, **kwargs):
        seen.append([image.format, *image.size])
        return load(image, *args, **kwargs)

    ImageFile.ImageFile.load = recording
    try:
        yield seen
    finally:
        ImageFile.ImageFile.load = load


def read_portrait(data: bytes, content_type: str | None, **limits: int) -> dict[str, object]:
    """What ``read_portrait`` did: the pixels it returned, or the refusal it raised, and the
    sizes at which it decoded pixels."""
    with _decodes() as decoded:
        try:
            pixels = _ch06().read_portrait(data, content_type, **limits)
        except ServiceError as error:
            return {"refused": True, "status": getattr(error, "status", None),
                    "decoded": decoded}
        except NotImplementedError:
            raise
        except Exception as error:
            return {"refused": False, "raised": type(error).__name__, "decoded": decoded}
    if isinstance(pixels, np.ndarray) and pixels.dtype != object:
        return {"pixels": pixels, "decoded": decoded}
    return {"returned": type(pixels).__name__, "decoded": decoded}


# Exercise 6.2 ------------------------------------------------------------------------------

def _loop_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Recorder:
    """A fake model: records every batch it is given and the thread that ran it; with a gate,
    its first call waits there (never on the event loop's thread, where it would freeze the
    scene) until the scene opens it."""

    def __init__(self, fail_on: object = None, gated: bool = False):
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.on_loop = False
        self.fail_on = fail_on
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        self.on_loop = self.on_loop or _loop_thread()
        self.entered.set()
        if not self.on_loop:
            self.gate.wait(timeout=3 * LIMIT_S)
        if self.fail_on in items:
            raise ValueError("a poisoned portrait")
        return [10 * item for item in items]


def _plain(result: object) -> object:
    if isinstance(result, ServiceError):
        return {"raised": "ServiceError", "status": getattr(result, "status", None),
                "code": getattr(result, "code", None),
                "retry_after": getattr(result, "retry_after", None)}
    if isinstance(result, asyncio.CancelledError):
        return {"raised": "CancelledError"}
    if isinstance(result, BaseException):
        return {"raised": type(result).__name__}
    return result if isinstance(result, (int, float, str)) else {"kind": type(result).__name__}


def _outcome(task: asyncio.Task) -> object:
    """A finished submit's result or exception as plain data; None while it runs."""
    if not task.done():
        return None
    if task.cancelled():
        return {"raised": "CancelledError"}
    _unfinished(task.exception())
    return _plain(task.exception() if task.exception() is not None else task.result())


def _scene(model: Recorder, play) -> dict[str, object]:
    """Run one scene against a fresh event loop: ``play(seen)`` fills ``seen``; a stuck step
    is reported, the gate is always opened, and the batcher is always closed."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        seen["loop_thread"] = threading.get_ident()
        try:
            await play(seen)
        except Stuck as stuck:
            seen.setdefault("stuck", str(stuck))
        finally:
            model.gate.set()
            made = seen.get("batcher")
            if made is not None and not seen.get("closed"):
                try:
                    await _within(made.close(), "close()")
                except NotImplementedError:
                    if "stuck" not in seen:
                        raise
                except Exception as error:  # a closing failure matters only to its own test
                    seen.setdefault("close_failed", f"{type(error).__name__}: {error}")
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

    asyncio.run(main())
    seen.pop("batcher", None)
    loop_thread = seen.pop("loop_thread")
    seen.update(batches=model.batches, model_threads=len(model.threads),
                on_loop=model.on_loop or loop_thread in model.threads)
    return seen


def _batcher(model: Recorder, seen: dict, **settings: float) -> Any:
    made = _ch06().MicroBatcher(model, **settings)
    seen["batcher"] = made
    return made


async def _started(made) -> None:
    await _within(made.start(), "start()")


def batcher(items: list[int], max_batch_size: int, max_wait_s: float,
            fail_on: int | None = None, apart_s: float = 0.0) -> dict[str, object]:
    """Submit ``items`` to a ``MicroBatcher`` around a recording fake model, all at once or
    ``apart_s`` seconds apart: each caller's result (or its exception), the batches the model
    saw, how long the last answer took, and whether the model ran on the event loop's thread."""
    model = Recorder(fail_on)

    async def play(seen: dict) -> None:
        made = _batcher(model, seen, max_batch_size=max_batch_size, max_wait_s=max_wait_s)
        await _started(made)
        start = time.perf_counter()
        tasks = []
        for item in items:
            tasks.append(asyncio.ensure_future(made.submit(item)))
            if apart_s:
                await asyncio.sleep(apart_s)
        try:
            await _within(asyncio.wait(tasks), "submit")
        finally:
            seen["elapsed_s"] = time.perf_counter() - start
            seen["results"] = [_outcome(task) for task in tasks]
        if not all(task.done() for task in tasks):
            waiting = sum(not task.done() for task in tasks)
            raise Stuck(f"{waiting} of {len(tasks)} submit calls never returned within "
                        f"{LIMIT_S:g} s")

    return _scene(model, play)


async def _until(condition, what: str, limit: float = LIMIT_S) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise Stuck(f"{what} within {limit:g} s")
        await asyncio.sleep(0.005)


def full_queue() -> dict[str, object]:
    """A gated model holds the first item; three more fill ``max_queue=3``; a fifth must be
    refused at once; the caller of the third gives up, and a sixth must then find room. Then
    the gate opens: what each caller got and what the model saw."""
    model = Recorder(gated=True)

    async def play(seen: dict) -> None:
        made = _batcher(model, seen, max_batch_size=2, max_wait_s=0.01, max_queue=3)
        await _started(made)
        tasks = {0: asyncio.ensure_future(made.submit(0))}
        await _until(lambda: model.entered.is_set() or tasks[0].done(),
                     "the model was never called")
        _outcome(tasks[0])
        for item in (1, 2, 3):
            tasks[item] = asyncio.ensure_future(made.submit(item))
        await asyncio.sleep(0.05)
        seen["queued"] = {str(item): _outcome(tasks[item]) for item in (1, 2, 3)}
        try:
            await _within(made.submit(4), "submit(4) to a full batcher", 2.0)
            seen["refused"] = {"raised": None}
        except Stuck:
            seen["refused"] = {"stuck": True}
        except Exception as error:
            _unfinished(error)
            seen["refused"] = _plain(error)
        tasks[2].cancel()
        await asyncio.wait([tasks[2]], timeout=LIMIT_S)
        await asyncio.sleep(0.02)
        tasks[5] = asyncio.ensure_future(made.submit(5))
        await asyncio.sleep(0.05)
        seen["sixth"] = _outcome(tasks[5])
        model.gate.set()
        answered = [tasks[item] for item in (0, 1, 3, 5)]
        await asyncio.wait(answered, timeout=LIMIT_S)
        seen["results"] = {str(item): _outcome(task) for item, task in tasks.items()}

    return _scene(model, play)


def closing() -> dict[str, object]:
    """A gated model runs items 0 to 3 as one batch; 4 to 7 wait; then ``close()``: what the
    waiting callers got before the gate opened, what the running ones got after it, whether
    close returned, and what a submit after close got."""
    model = Recorder(gated=True)

    async def play(seen: dict) -> None:
        made = _batcher(model, seen, max_batch_size=4, max_wait_s=0.01, max_queue=16)
        await _started(made)
        running = [asyncio.ensure_future(made.submit(item)) for item in range(4)]
        await _until(lambda: model.entered.is_set() or any(t.done() for t in running),
                     "the model was never called")
        [_outcome(task) for task in running]
        waiting = [asyncio.ensure_future(made.submit(item)) for item in range(4, 8)]
        await asyncio.sleep(0.05)
        closer = asyncio.ensure_future(made.close())
        seen["closed"] = True
        await asyncio.wait(waiting, timeout=LIMIT_S)
        seen["waiting"] = [_outcome(task) for task in waiting]
        seen["running_before_gate"] = [_outcome(task) for task in running]
        model.gate.set()
        try:
            await _within(asyncio.shield(closer), "close()")
        except Stuck:
            seen["close_returned"] = False
        else:
            seen["close_returned"] = True
        await asyncio.wait(running, timeout=LIMIT_S)
        seen["running"] = [_outcome(task) for task in running]
        if closer.done() and not closer.cancelled() and closer.exception() is not None:
            _unfinished(closer.exception())
            seen["close_raised"] = type(closer.exception()).__name__
        try:
            await _within(made.submit(8), "submit(8) after close()", 2.0)
            seen["after"] = {"raised": None}
        except Stuck:
            seen["after"] = {"stuck": True}
        except Exception as error:
            _unfinished(error)
            seen["after"] = _plain(error)

    return _scene(model, play)


# Exercise 6.3 ------------------------------------------------------------------------------

class Gate(Predictor):
    """A fake predictor whose calls wait until the scene opens the gate."""

    def __init__(self):
        self.open = threading.Event()
        self.calls = 0

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        if not self.open.wait(timeout=20):
            raise TimeoutError("the gate was never opened")
        return np.tile(np.array([[0.25, 0.75]], np.float32), (len(images), 1))


def _truth(value: object) -> str:
    """``"True"`` or ``"False"`` for the booleans themselves, the type's name for anything else."""
    return repr(value) if isinstance(value, bool) else type(value).__name__


def warden() -> dict[str, object]:
    """A ``Warden`` of two rounds over a gated predictor: ``ready`` before warming, while
    warming and after, and how many times the predictor ran."""
    gate = Gate()
    made = _ch06().Warden(gate, np.zeros((2, 64, 64, 3), np.uint8), rounds=2)
    seen: dict[str, Any] = {"before": _truth(made.ready)}
    worker = threading.Thread(target=made.warm)
    worker.start()
    while gate.calls == 0 and worker.is_alive():
        time.sleep(0.01)
    seen["warming"] = _truth(made.ready)
    gate.open.set()
    worker.join(timeout=20)
    seen.update(calls=gate.calls, after=_truth(made.ready))
    return seen


def _answer(response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return {"status": response.status_code, "body": body,
            "retry_after": response.headers.get("retry-after")}


@contextlib.contextmanager
def _serving(app) -> Iterator[TestClient]:
    """A TestClient around ``app``; a failure while shutting down (the batcher's ``close``,
    graded by its own tests) does not hide what the scene saw."""
    client = TestClient(app)
    client.__enter__()
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.__exit__(None, None, None)


def ready_endpoint() -> dict[str, object]:
    """The app around a gated predictor: /ready and /health while warming, then /ready once
    the gate opens (polled for up to 20 s)."""
    gate = Gate()
    seen: dict[str, object] = {}
    try:
        with _serving(_ch06().create_app(lambda: gate)) as client:
            seen["warming"] = _answer(client.get("/ready"))
            seen["health"] = client.get("/health").status_code
            gate.open.set()
            deadline = time.monotonic() + 20
            while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            seen["warm"] = _answer(client.get("/ready"))
    finally:
        gate.open.set()
    return seen


# Exercise 6.4 ------------------------------------------------------------------------------

_CLIENT: dict[str, TestClient] = {}
_SERVING: dict[str, contextlib.ExitStack] = {}


def _upload(client: TestClient, data: bytes, content_type: str):
    return client.post("/predict", files={"image": ("portrait", data, content_type)})


def _until_ready(client: TestClient, data: bytes) -> None:
    """Post a good portrait until the app is past its 503 (warming), for up to 20 s."""
    deadline = time.monotonic() + 20
    while (_upload(client, data, "image/png").status_code == 503
           and time.monotonic() < deadline):
        time.sleep(0.02)


def predict(uploads: list[tuple[bytes, str]], max_bytes: int = 100_000,
            warm: bytes = b"") -> list[dict]:
    """Each upload's answer from the app serving VampireNet (made once, limit ``max_bytes``,
    past its warm-up: ``warm`` is a good portrait to knock with)."""
    if "client" not in _CLIENT:
        load = lambda: Detector.from_weights("vampirenet", device=torch.device("cpu"))  # noqa: E731
        stack = contextlib.ExitStack()
        client = stack.enter_context(_serving(_ch06().create_app(load, max_bytes=max_bytes)))
        _SERVING["stack"], _CLIENT["client"] = stack, client
        _until_ready(client, warm)
    return [_answer(_upload(_CLIENT["client"], data, kind)) for data, kind in uploads]


def close() -> None:
    _CLIENT.pop("client", None)
    stack = _SERVING.pop("stack", None)
    if stack is not None:
        stack.close()


class Spy(Predictor):
    """A fake predictor that notes whether each call ran on an event loop, and the size of
    each batch of portraits (the warm-up's all-black images are not counted); each call takes
    ``delay_s``."""

    def __init__(self, delay_s: float = 0.0):
        self.on_loop: list[bool] = []
        self.sizes: list[int] = []
        self.delay_s = delay_s

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        if images.any():
            self.on_loop.append(_loop_thread())
            self.sizes.append(len(images))
        time.sleep(self.delay_s)
        return np.tile(np.array([[0.9, 0.1]], np.float32), (len(images), 1))


def spied(data: bytes) -> dict[str, object]:
    """One upload to the app around a spying predictor, once it is warm: its status, and for
    each call whether it ran on the event loop."""
    spy = Spy()
    with _serving(_ch06().create_app(lambda: spy)) as client:
        _until_ready(client, data)
        spy.on_loop.clear()
        status = _upload(client, data, "image/png").status_code
    return {"status": status, "on_loop": spy.on_loop}


async def _lifespan_client(app) -> contextlib.AsyncExitStack:
    stack = contextlib.AsyncExitStack()
    await _within(stack.enter_async_context(app.router.lifespan_context(app)), "startup")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://detector")
    stack.push_async_callback(client.aclose)
    return stack, client


async def _post(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post("/predict", files={"image": ("portrait", data, "image/png")})


def crowd(data: bytes, requests: int = 8, delay_s: float = 0.05) -> dict[str, object]:
    """``requests`` concurrent uploads to the warm app (``max_batch_size=4``, ``max_wait_s=0.2``)
    around a spying predictor whose calls take ``delay_s``: the answers, and the batch sizes
    the predictor saw."""
    spy = Spy(delay_s)
    seen: dict[str, object] = {}

    async def main() -> None:
        app = _ch06().create_app(lambda: spy, max_batch_size=4, max_wait_s=0.2)
        stack, client = await _lifespan_client(app)
        try:
            deadline = time.monotonic() + 20
            while (await _post(client, data)).status_code == 503 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            spy.sizes.clear()
            answers = await _within(asyncio.gather(*(_post(client, data)
                                                     for _ in range(requests))),
                                    f"{requests} concurrent requests", 20.0)
            seen["answers"] = [_answer(response) for response in answers]
        except Stuck as stuck:
            seen["stuck"] = str(stuck)
        finally:
            with contextlib.suppress(Exception):
                await _within(stack.aclose(), "shutdown")
        seen["sizes"] = list(spy.sizes)

    asyncio.run(main())
    return seen


def before_ready(data: bytes) -> dict[str, object]:
    """An upload to the app while its gated predictor warms (answered within 3 s, or not),
    then once the gate has opened."""
    gate = Gate()
    seen: dict[str, object] = {}

    async def main() -> None:
        app = _ch06().create_app(lambda: gate)
        stack, client = await _lifespan_client(app)
        try:
            try:
                seen["warming"] = _answer(await _within(_post(client, data), "POST /predict",
                                                        3.0))
            except Stuck:
                seen["warming"] = {"stuck": True}
            gate.open.set()
            deadline = time.monotonic() + 20
            while (response := await _post(client, data)).status_code == 503:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            seen["warm"] = _answer(response)
        finally:
            gate.open.set()
            with contextlib.suppress(Exception):
                await _within(stack.aclose(), "shutdown")

    asyncio.run(main())
    return seen
