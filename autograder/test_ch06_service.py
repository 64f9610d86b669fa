"""Chapter 6 — The detection service."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from vampire_detector.detector import Detector, Predictor
from vampire_detector.harness.hostile import png_claiming
from vampire_detector.images import encode, to_png
from vampire_detector.portraits import LABELS, make_portraits
from vampire_detector.service.errors import ServiceError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ch06(implementation):
    return implementation("ch06_service")


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    return make_portraits(8, seed=13)[0]


@pytest.fixture(scope="module")
def eager() -> Detector:
    return Detector.from_weights("vampirenet", device=CPU)




def refusal(ch06, data: bytes, content_type: str | None, **limits) -> ServiceError:
    """The ServiceError that read_portrait raises, or a failure saying it accepted the input."""
    try:
        ch06.read_portrait(data, content_type, **limits)
    except ServiceError as error:
        return error
    except NotImplementedError:
        raise
    except Exception as error:
        pytest.fail(f"read_portrait raised {type(error).__name__} instead of a ServiceError "
                    "with a 4xx status", pytrace=False)
    pytest.fail("read_portrait accepted an input it must refuse", pytrace=False)


# Exercise 6.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_decodes_png_and_jpeg(ch06, portraits):
    """6.1 read_portrait returns the portrait's pixels for a PNG, and an RGB array for a JPEG"""
    pixels = ch06.read_portrait(to_png(portraits[0]), "image/png")
    assert isinstance(pixels, np.ndarray), "return a numpy array"
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8, (
        f"expected a uint8 array of shape (64, 64, 3), got {pixels.dtype} {pixels.shape}")
    assert np.array_equal(pixels, portraits[0]), "a 64x64 PNG must come back pixel for pixel"
    jpeg = ch06.read_portrait(encode(portraits[1], "JPEG"), "image/jpeg")
    assert jpeg.shape == (64, 64, 3), f"a JPEG gave an array of shape {jpeg.shape}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_converts_modes_and_sizes(ch06, portraits):
    """6.1 grayscale, palette and RGBA images become RGB; other sizes are resized to 64x64"""
    for mode in ("L", "P", "RGBA", "LA"):
        pixels = ch06.read_portrait(encode(portraits[2], mode=mode), "image/png")
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8, (
            f"a {mode} PNG gave {pixels.dtype} {pixels.shape}, not uint8 (64, 64, 3)")
    big = np.asarray(np.kron(portraits[3], np.ones((5, 3, 1), np.uint8)))  # 320 x 192
    pixels = ch06.read_portrait(encode(big), "image/png")
    assert pixels.shape == (64, 64, 3), f"a 192x320 image gave an array of shape {pixels.shape}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(3)
def test_read_portrait_refuses_bad_uploads_with_the_right_status(ch06, portraits):
    """6.1 too large -> 413, wrong content type -> 415, not an image or truncated -> 422"""
    png = to_png(portraits[4])
    cases = {
        "a file over max_bytes": (png, "image/png", {"max_bytes": len(png) - 1}, 413),
        "a text/plain upload": (b"garlic", "text/plain", {}, 415),
        "an upload with no content type": (png, None, {}, 415),
        "bytes that are not an image": (b"not an image at all" * 20, "image/png", {}, 422),
        "a truncated PNG": (png[: len(png) // 2], "image/png", {}, 422),
        "an empty file": (b"", "image/png", {}, 422),
    }
    for name, (data, content_type, limits, status) in cases.items():
        error = refusal(ch06, data, content_type, **limits)
        assert error.status == status, f"{name} got status {error.status}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_refuses_decompression_bombs_before_decoding(ch06):
    """6.1 an image over max_pixels gets a 422, without decoding it"""
    error = refusal(ch06, png_claiming(60_000, 60_000), "image/png")
    assert error.status == 422, f"a PNG claiming 60000x60000 pixels got status {error.status}"
    big = encode(np.zeros((600, 600, 3), np.uint8))
    error = refusal(ch06, big, "image/png", max_pixels=100_000)
    assert error.status == 422, f"a 600x600 image over max_pixels got status {error.status}"


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


async def submit_all(batcher, items: list[int]) -> list[object]:
    """Submit every item at once; each caller's result, or its exception, in order."""
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


@pytest.mark.exercise("6.2")
@pytest.mark.points(3)
def test_batcher_groups_concurrent_requests(ch06):
    """6.2 eight concurrent requests with max_batch_size=4 make two model calls of four"""
    model = Recorder()
    batcher = ch06.MicroBatcher(model, max_batch_size=4, max_wait_s=30.0)
    results = asyncio.run(submit_all(batcher, list(range(8))))
    assert sorted(len(batch) for batch in model.batches) == [4, 4], (
        f"expected two model calls of 4 items, got calls of sizes "
        f"{[len(batch) for batch in model.batches]}")
    assert results == [10 * i for i in range(8)], (
        "each caller must get the result for its own item")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_closes_a_batch_after_max_wait(ch06):
    """6.2 a batch that never fills is sent after max_wait_s, in one call"""
    model = Recorder()
    batcher = ch06.MicroBatcher(model, max_batch_size=100, max_wait_s=0.05)
    start = time.perf_counter()
    results = asyncio.run(submit_all(batcher, [1, 2, 3]))
    assert time.perf_counter() - start < 10, "the batch waited far longer than max_wait_s"
    assert results == [10, 20, 30], "each caller must get the result for its own item"
    assert len(model.batches) == 1, (
        f"three requests that arrive together should share one call, not {len(model.batches)}")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_runs_the_model_off_the_event_loop(ch06):
    """6.2 the model runs on a worker thread, not on the event loop's thread"""
    model = Recorder()
    batcher = ch06.MicroBatcher(model, max_batch_size=2, max_wait_s=0.01)

    async def main() -> int:
        await submit_all(batcher, [1, 2, 3])
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert model.threads and loop_thread not in model.threads, (
        "run_batch ran on the event loop's thread, which stops every other request meanwhile")


@pytest.mark.exercise("6.2")
@pytest.mark.points(3)
def test_batcher_isolates_a_failing_request(ch06):
    """6.2 when one item of a batch fails, only its caller gets the error"""
    model = Recorder(fail_on=-1)
    batcher = ch06.MicroBatcher(model, max_batch_size=4, max_wait_s=30.0)
    results = asyncio.run(submit_all(batcher, [1, -1, 2, 3]))
    assert isinstance(results[1], ValueError), (
        "the caller of the failing item must get the model's exception")
    assert results[:1] + results[2:] == [10, 20, 30], (
        "the other callers in the failed batch must still get their own results")


# Exercise 6.3 ------------------------------------------------------------------------------

class Gate(Predictor):
    """A fake predictor whose calls wait until the test opens the gate."""

    def __init__(self):
        self.open = threading.Event()
        self.calls = 0

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        if not self.open.wait(timeout=20):
            raise TimeoutError("the gate was never opened")
        return np.tile(np.array([[0.25, 0.75]], np.float32), (len(images), 1))


@pytest.mark.exercise("6.3")
@pytest.mark.points(2)
def test_warden_is_ready_only_after_warming(ch06):
    """6.3 Warden.ready is False until warm() has run the predictor, True after"""
    gate = Gate()
    warden = ch06.Warden(gate, np.zeros((2, 64, 64, 3), np.uint8), rounds=2)
    assert warden.ready is False, "a warden that has not warmed the model must not be ready"
    worker = threading.Thread(target=warden.warm)
    worker.start()
    while gate.calls == 0 and worker.is_alive():
        time.sleep(0.01)
    assert warden.ready is False, "the warden was ready while the model was still warming"
    gate.open.set()
    worker.join(timeout=20)
    assert gate.calls >= 2, "warm() must run the predictor `rounds` times"
    assert warden.ready is True, "after warm() the warden must be ready"


@pytest.mark.exercise("6.3")
@pytest.mark.points(2)
def test_ready_endpoint_follows_the_warden(ch06):
    """6.3 GET /ready is 503 with the error body while warming, 200 once warm"""
    gate = Gate()
    with TestClient(ch06.create_app(lambda: gate)) as client:
        response = client.get("/ready")
        assert response.status_code == 503, (
            f"/ready answered {response.status_code} while the model was still warming")
        assert set(response.json().get("error", {})) == {"code", "message"}, (
            'a 503 from /ready must have the body {"error": {"code": ..., "message": ...}}')
        assert client.get("/health").status_code == 200, "/health must answer while warming"
        gate.open.set()
        deadline = time.monotonic() + 20
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        response = client.get("/ready")
        assert response.status_code == 200, "/ready must answer 200 once the model is warm"
        assert response.json().get("ready") is True, 'a ready service answers {"ready": true}'


# Exercise 6.4 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(ch06):
    with TestClient(ch06.create_app(lambda: Detector.from_weights("vampirenet", device=CPU),
                                    max_bytes=100_000)) as client:
        yield client


def upload(client: TestClient, data: bytes, content_type: str = "image/png"):
    return client.post("/predict", files={"image": ("portrait", data, content_type)})


@pytest.mark.exercise("6.4")
@pytest.mark.points(3)
def test_predict_answers_like_the_detector(ch06, client, portraits, eager):
    """6.4 POST /predict returns the eager detector's label and probability, and a latency"""
    expected = eager.predict(portraits)
    for pixels, truth in zip(portraits, expected, strict=True):
        response = upload(client, to_png(pixels))
        assert response.status_code == 200, f"a good portrait got status {response.status_code}"
        body = response.json()
        assert {"label", "probability", "latency_ms"} <= set(body), (
            f"the answer needs label, probability and latency_ms; it has {sorted(body)}")
        assert body["label"] in LABELS, f"unknown label {body['label']!r}"
        assert body["label"] == truth.label, "the label differs from the eager detector's"
        assert abs(body["probability"] - truth.probability) < 1e-4, (
            "the probability differs from the eager detector's")
        assert body["latency_ms"] >= 0, "latency_ms must be a duration in milliseconds"


@pytest.mark.exercise("6.4")
@pytest.mark.points(3)
def test_predict_refuses_bad_input_and_keeps_serving(ch06, client, portraits):
    """6.4 bad uploads get 413/415/422 with the one error body, and the service keeps serving"""
    good = to_png(portraits[0])
    bad = {
        "a file over the upload limit": (b"\x89PNG" + b"0" * 200_000, "image/png", 413),
        "a text file": (b"garlic and holy water", "text/plain", 415),
        "bytes that are not an image": (b"not an image" * 50, "image/png", 422),
        "a truncated PNG": (good[: len(good) // 2], "image/png", 422),
        "a decompression bomb": (png_claiming(60_000, 60_000), "image/png", 422),
    }
    for name, (data, content_type, status) in bad.items():
        response = upload(client, data, content_type)
        assert response.status_code == status, f"{name} got status {response.status_code}"
        error = response.json().get("error")
        assert isinstance(error, dict) and set(error) == {"code", "message"}, (
            f'{name}: the body must be {{"error": {{"code": ..., "message": ...}}}}')
        after = upload(client, good)
        assert after.status_code == 200, f"after {name}, a good portrait got {after.status_code}"


@pytest.mark.exercise("6.4")
@pytest.mark.points(2)
def test_predict_runs_the_model_off_the_event_loop(ch06):
    """6.4 the predictor runs on a worker thread, not on the event loop"""
    class Spy(Predictor):
        def __init__(self):
            self.on_loop: list[bool] = []

        def probabilities(self, images: np.ndarray) -> np.ndarray:
            try:
                asyncio.get_running_loop()
                self.on_loop.append(True)
            except RuntimeError:
                self.on_loop.append(False)
            return np.tile(np.array([[0.9, 0.1]], np.float32), (len(images), 1))

    spy = Spy()
    with TestClient(ch06.create_app(lambda: spy)) as client:
        spy.on_loop.clear()  # the warm-up calls do not count
        response = upload(client, to_png(make_portraits(1, seed=3)[0][0]))
    assert response.status_code == 200, f"a good portrait got status {response.status_code}"
    assert spy.on_loop and not any(spy.on_loop), (
        "the predictor ran on the event loop, which stops every other request meanwhile")

