"""Chapter 6 — The detection service.

Sealed: your code runs in a sandboxed process. The probes of ``autograder/probes/ch06.py`` put
your functions, batcher, warden and app through scenes there, with fake models that record what
they see (the batches, the threads, the calls), and send back statuses, bodies and records; the
expected answers are computed here, with the grader's own detector.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.harness.hostile import png_claiming
from vampire_detector.images import encode, to_png
from vampire_detector.portraits import LABELS, make_portraits

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch06", "ch06_service")


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    return make_portraits(8, seed=13)[0]


@pytest.fixture(scope="module")
def eager() -> Detector:
    return Detector.from_weights("vampirenet", device=CPU)


def refusal(probe, data: bytes, content_type: str | None, **limits) -> int | None:
    """The status of the ServiceError that read_portrait raises, or a failure saying it
    accepted the input."""
    seen = probe.read_portrait(data, content_type, **limits)
    if seen.get("refused"):
        return seen["status"]
    if "raised" in seen:
        pytest.fail(f"read_portrait raised {seen['raised']} instead of a ServiceError "
                    "with a 4xx status", pytrace=False)
    pytest.fail("read_portrait accepted an input it must refuse", pytrace=False)


def pixels_of(seen: dict) -> np.ndarray:
    if seen.get("refused") or "raised" in seen:
        pytest.fail("read_portrait refused a good portrait", pytrace=False)
    assert "pixels" in seen, "return a numpy array"
    return seen["pixels"]


# Exercise 6.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_decodes_png_and_jpeg(probe, portraits):
    """6.1 read_portrait returns the portrait's pixels for a PNG, and an RGB array for a JPEG"""
    pixels = pixels_of(probe.read_portrait(to_png(portraits[0]), "image/png"))
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8, (
        f"expected a uint8 array of shape (64, 64, 3), got {pixels.dtype} {pixels.shape}")
    assert np.array_equal(pixels, portraits[0]), "a 64x64 PNG must come back pixel for pixel"
    jpeg = pixels_of(probe.read_portrait(encode(portraits[1], "JPEG"), "image/jpeg"))
    assert jpeg.shape == (64, 64, 3), f"a JPEG gave an array of shape {jpeg.shape}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_converts_modes_and_sizes(probe, portraits):
    """6.1 grayscale, palette and RGBA images become RGB; other sizes are resized to 64x64"""
    for mode in ("L", "P", "RGBA", "LA"):
        pixels = pixels_of(probe.read_portrait(encode(portraits[2], mode=mode), "image/png"))
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8, (
            f"a {mode} PNG gave {pixels.dtype} {pixels.shape}, not uint8 (64, 64, 3)")
    big = np.asarray(np.kron(portraits[3], np.ones((5, 3, 1), np.uint8)))  # 320 x 192
    pixels = pixels_of(probe.read_portrait(encode(big), "image/png"))
    assert pixels.shape == (64, 64, 3), f"a 192x320 image gave an array of shape {pixels.shape}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(3)
def test_read_portrait_refuses_bad_uploads_with_the_right_status(probe, portraits):
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
        got = refusal(probe, data, content_type, **limits)
        assert got == status, f"{name} got status {got}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_refuses_decompression_bombs_before_decoding(probe):
    """6.1 an image over max_pixels gets a 422, without decoding it"""
    got = refusal(probe, png_claiming(60_000, 60_000), "image/png")
    assert got == 422, f"a PNG claiming 60000x60000 pixels got status {got}"
    big = encode(np.zeros((600, 600, 3), np.uint8))
    got = refusal(probe, big, "image/png", max_pixels=100_000)
    assert got == 422, f"a 600x600 image over max_pixels got status {got}"


# Exercise 6.2 ------------------------------------------------------------------------------
# The probe submits every item at once to your MicroBatcher, around a fake model that records
# every batch it is given and the thread that ran it (it answers 10 times each item).

@pytest.mark.exercise("6.2")
@pytest.mark.points(3)
def test_batcher_groups_concurrent_requests(probe):
    """6.2 eight concurrent requests with max_batch_size=4 make two model calls of four"""
    seen = probe.batcher(list(range(8)), 4, 30.0)
    assert sorted(len(batch) for batch in seen["batches"]) == [4, 4], (
        f"expected two model calls of 4 items, got calls of sizes "
        f"{[len(batch) for batch in seen['batches']]}")
    assert seen["results"] == [10 * i for i in range(8)], (
        "each caller must get the result for its own item")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_closes_a_batch_after_max_wait(probe):
    """6.2 a batch that never fills is sent after max_wait_s, in one call"""
    start = time.perf_counter()
    seen = probe.batcher([1, 2, 3], 100, 0.05)
    assert time.perf_counter() - start < 10, "the batch waited far longer than max_wait_s"
    assert seen["results"] == [10, 20, 30], "each caller must get the result for its own item"
    assert len(seen["batches"]) == 1, (
        f"three requests that arrive together should share one call, not {len(seen['batches'])}")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_runs_the_model_off_the_event_loop(probe):
    """6.2 the model runs on a worker thread, not on the event loop's thread"""
    seen = probe.batcher([1, 2, 3], 2, 0.01)
    assert seen["model_threads"] and not seen["on_loop"], (
        "run_batch ran on the event loop's thread, which stops every other request meanwhile")


@pytest.mark.exercise("6.2")
@pytest.mark.points(3)
def test_batcher_isolates_a_failing_request(probe):
    """6.2 when one item of a batch fails, only its caller gets the error"""
    results = probe.batcher([1, -1, 2, 3], 4, 30.0, fail_on=-1)["results"]
    assert results[1] == {"raised": "ValueError"}, (
        "the caller of the failing item must get the model's exception")
    assert results[:1] + results[2:] == [10, 20, 30], (
        "the other callers in the failed batch must still get their own results")


# Exercise 6.3 ------------------------------------------------------------------------------
# The probe's predictor is a gate: its calls wait until the probe opens it.

@pytest.mark.exercise("6.3")
@pytest.mark.points(2)
def test_warden_is_ready_only_after_warming(probe):
    """6.3 Warden.ready is False until warm() has run the predictor, True after"""
    seen = probe.warden()
    assert seen["before"] == "False", "a warden that has not warmed the model must not be ready"
    assert seen["warming"] == "False", "the warden was ready while the model was still warming"
    assert seen["calls"] >= 2, "warm() must run the predictor `rounds` times"
    assert seen["after"] == "True", "after warm() the warden must be ready"


@pytest.mark.exercise("6.3")
@pytest.mark.points(2)
def test_ready_endpoint_follows_the_warden(probe):
    """6.3 GET /ready is 503 with the error body while warming, 200 once warm"""
    seen = probe.ready_endpoint()
    warming, warm = seen["warming"], seen["warm"]
    assert warming["status"] == 503, (
        f"/ready answered {warming['status']} while the model was still warming")
    body = warming["body"] if isinstance(warming["body"], dict) else {}
    error = body.get("error")
    assert isinstance(error, dict) and set(error) == {"code", "message"}, (
        'a 503 from /ready must have the body {"error": {"code": ..., "message": ...}}')
    assert seen["health"] == 200, "/health must answer while warming"
    assert warm["status"] == 200, "/ready must answer 200 once the model is warm"
    assert isinstance(warm["body"], dict) and warm["body"].get("ready") is True, (
        'a ready service answers {"ready": true}')


# Exercise 6.4 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(probe):
    """Uploads to your app serving VampireNet (limit 100 kB), made once in the sandbox."""
    yield lambda uploads: probe.predict(uploads, 100_000)
    probe.close()


def upload(client, data: bytes, content_type: str = "image/png") -> dict:
    (answer,) = client([(data, content_type)])
    return answer


@pytest.mark.exercise("6.4")
@pytest.mark.points(3)
def test_predict_answers_like_the_detector(client, portraits, eager):
    """6.4 POST /predict returns the eager detector's label and probability, and a latency"""
    expected = eager.predict(portraits)
    answers = client([(to_png(pixels), "image/png") for pixels in portraits])
    for response, truth in zip(answers, expected, strict=True):
        assert response["status"] == 200, f"a good portrait got status {response['status']}"
        body = response["body"] if isinstance(response["body"], dict) else {}
        assert {"label", "probability", "latency_ms"} <= set(body), (
            f"the answer needs label, probability and latency_ms; it has {sorted(body)}")
        assert body["label"] in LABELS, f"unknown label {body['label']!r}"
        assert body["label"] == truth.label, "the label differs from the eager detector's"
        assert abs(body["probability"] - truth.probability) < 1e-4, (
            "the probability differs from the eager detector's")
        assert body["latency_ms"] >= 0, "latency_ms must be a duration in milliseconds"


@pytest.mark.exercise("6.4")
@pytest.mark.points(3)
def test_predict_refuses_bad_input_and_keeps_serving(client, portraits):
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
        response, after = client([(data, content_type), (good, "image/png")])
        assert response["status"] == status, f"{name} got status {response['status']}"
        body = response["body"] if isinstance(response["body"], dict) else {}
        error = body.get("error")
        assert isinstance(error, dict) and set(error) == {"code", "message"}, (
            f'{name}: the body must be {{"error": {{"code": ..., "message": ...}}}}')
        assert after["status"] == 200, f"after {name}, a good portrait got {after['status']}"


@pytest.mark.exercise("6.4")
@pytest.mark.points(2)
def test_predict_runs_the_model_off_the_event_loop(probe):
    """6.4 the predictor runs on a worker thread, not on the event loop"""
    seen = probe.spied(to_png(make_portraits(1, seed=3)[0][0]))
    assert seen["status"] == 200, f"a good portrait got status {seen['status']}"
    assert seen["on_loop"] and not any(seen["on_loop"]), (
        "the predictor ran on the event loop, which stops every other request meanwhile")
