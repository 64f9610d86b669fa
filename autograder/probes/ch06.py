"""Chapter 6's probes: the submission's upload checks, batcher, warden and app, each put
through a scene built here with fake models that record what they see; the observations
(statuses, bodies, batches, threads) go back as plain data."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from typing import Any

import numpy as np
import torch
from fastapi.testclient import TestClient

from vampire_detector.detector import Detector, Predictor
from vampire_detector.service.errors import ServiceError


def _ch06():
    return importlib.import_module("ch06_service")


# Exercise 6.1 ------------------------------------------------------------------------------

def read_portrait(data: bytes, content_type: str | None, **limits: int) -> dict[str, object]:
    """What ``read_portrait`` did: the pixels it returned, or the refusal it raised."""
    try:
        pixels = _ch06().read_portrait(data, content_type, **limits)
    except ServiceError as error:
        return {"refused": True, "status": getattr(error, "status", None)}
    except NotImplementedError:
        raise
    except Exception as error:
        return {"refused": False, "raised": type(error).__name__}
    if isinstance(pixels, np.ndarray) and pixels.dtype != object:
        return {"pixels": pixels}
    return {"returned": type(pixels).__name__}


# Exercise 6.2 ------------------------------------------------------------------------------

class Recorder:
    """A fake model: records every batch it is given and the thread that ran it."""

    def __init__(self, fail_on: object = None):
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if self.fail_on in items:
            raise ValueError("a poisoned portrait")
        return [10 * item for item in items]


async def _submit_all(batcher, items: list[int]) -> list[object]:
    await batcher.start()
    try:
        results = await asyncio.gather(*(batcher.submit(i) for i in items),
                                       return_exceptions=True)
    finally:
        await batcher.stop()
    for result in results:
        if isinstance(result, NotImplementedError):
            raise result
    return results


def _plain(result: object) -> object:
    if isinstance(result, BaseException):
        return {"raised": type(result).__name__}
    return result if isinstance(result, (int, float, str)) else {"kind": type(result).__name__}


def batcher(items: list[int], max_batch_size: int, max_wait_s: float,
            fail_on: int | None = None) -> dict[str, object]:
    """Submit ``items`` all at once to a ``MicroBatcher`` around a recording fake model; each
    caller's result (or the name of its exception), the batches the model saw, and whether it
    ran on the event loop's thread."""
    model = Recorder(fail_on)
    made = _ch06().MicroBatcher(model, max_batch_size=max_batch_size, max_wait_s=max_wait_s)

    async def main() -> tuple[list[object], int]:
        return await _submit_all(made, items), threading.get_ident()

    results, loop_thread = asyncio.run(main())
    return {"results": [_plain(result) for result in results], "batches": model.batches,
            "model_threads": len(model.threads), "on_loop": loop_thread in model.threads}


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
    return {"status": response.status_code, "body": body}


def ready_endpoint() -> dict[str, object]:
    """The app around a gated predictor: /ready and /health while warming, then /ready once
    the gate opens (polled for up to 20 s)."""
    gate = Gate()
    seen: dict[str, object] = {}
    with TestClient(_ch06().create_app(lambda: gate)) as client:
        seen["warming"] = _answer(client.get("/ready"))
        seen["health"] = client.get("/health").status_code
        gate.open.set()
        deadline = time.monotonic() + 20
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        seen["warm"] = _answer(client.get("/ready"))
    return seen


# Exercise 6.4 ------------------------------------------------------------------------------

_CLIENT: dict[str, TestClient] = {}


def _upload(client: TestClient, data: bytes, content_type: str):
    return client.post("/predict", files={"image": ("portrait", data, content_type)})


def predict(uploads: list[tuple[bytes, str]], max_bytes: int = 100_000) -> list[dict]:
    """Each upload's answer from the app serving VampireNet (made once, limit ``max_bytes``)."""
    if "client" not in _CLIENT:
        load = lambda: Detector.from_weights("vampirenet", device=torch.device("cpu"))  # noqa: E731
        client = TestClient(_ch06().create_app(load, max_bytes=max_bytes))
        client.__enter__()
        _CLIENT["client"] = client
    return [_answer(_upload(_CLIENT["client"], data, kind)) for data, kind in uploads]


def close() -> None:
    client = _CLIENT.pop("client", None)
    if client is not None:
        client.__exit__(None, None, None)


class Spy(Predictor):
    """A fake predictor that notes whether each call ran on an event loop."""

    def __init__(self):
        self.on_loop: list[bool] = []

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        return np.tile(np.array([[0.9, 0.1]], np.float32), (len(images), 1))


def spied(data: bytes) -> dict[str, object]:
    """One upload to the app around a spying predictor: its status, and for each call after
    the warm-up whether it ran on the event loop."""
    spy = Spy()
    with TestClient(_ch06().create_app(lambda: spy)) as client:
        spy.on_loop.clear()  # the warm-up calls do not count
        status = _upload(client, data, "image/png").status_code
    return {"status": status, "on_loop": spy.on_loop}
