"""Chapter 6 — The detection service.

Sealed: your code runs in a sandboxed process. The probes of ``autograder/probes/ch06.py`` put
your functions, batcher, warden and app through scenes there, with fake models that record what
they see (the batches, the threads, the calls, the sizes Pillow decoded), and send back
statuses, bodies and records; the expected answers are computed here, with the grader's own
detector. A batcher that never answers is reported within seconds, with what it never did.

Wrong answers these tests catch, each with feedback that names the problem:

- 6.1 ``trusts-the-declared-type``: the bytes opened as the type the client declared, so a JPEG
  sent as ``image/png`` is a broken PNG (422) instead of a type mismatch (415).
- 6.1 ``not-an-image-is-415``: bytes declared as an image that are no image at all refused as
  an unsupported type (415) instead of unprocessable (422).
- 6.1 ``squashes-instead-of-cropping``: an oblong image resized whole to a square, faces
  squashed, instead of cropped to its centred square.
- 6.1 ``no-rgb-conversion``: grayscale, palette and RGBA images returned in their own mode.
- 6.1 ``decodes-before-checking-size``: the pixels decoded before the header's size is held
  against ``max_pixels``.
- 6.1 ``decodes-jpegs-at-full-size``: no reduced-scale decode (``draft``), so a large JPEG is
  refused (or decoded whole) where 1/8 of it would do.
- 6.1 ``copies-the-library``: the library's ``read_portrait`` imported instead of written.
- 6.2 ``runs-one-by-one``: every item sent to the model alone.
- 6.2 ``never-sends-a-partial-batch``: a batch that does not fill waits for ever.
- 6.2 ``waits-the-full-delay``: a full batch still waits ``max_wait_s``.
- 6.2 ``loses-a-failing-batch``: an exception in ``run_batch`` kills the worker, and the
  batch's callers wait for ever.
- 6.2 ``answers-in-the-wrong-order``: callers given each other's results.
- 6.2 ``cancelled-items-still-run``: an item whose caller gave up stays queued, reaches the
  model and keeps its place.
- 6.2 ``close-forgets-the-waiting``: ``close()`` leaves the queued callers waiting.
- 6.2 ``copies-the-library``: the library's ``MicroBatcher`` imported instead of written.
- 6.3 ``ready-while-warming``: ready set before the warm-up has run.
- 6.3 ``warms-once``: the warm-up runs once, whatever ``rounds`` says.
- 6.3 ``not-ready-without-error-body``: ``/ready`` answers 503 with a body of its own.
- 6.4 ``calls-the-model-without-the-batcher``: each request runs the predictor alone.
- 6.4 ``predicts-on-the-event-loop``: the predictor called right in the ``async`` route.
- 6.4 ``no-503-before-ready``: requests while the model warms wait for it instead of a 503.
- 6.4 ``latency-in-seconds``: ``latency_ms`` reported in seconds.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

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


def refusal(probe, data: bytes, content_type: str | None, **limits) -> dict:
    """What read_portrait saw when it refused the input (its status, what it decoded), or a
    failure saying it accepted it."""
    seen = probe.read_portrait(data, content_type, **limits)
    if seen.get("refused"):
        return seen
    if "raised" in seen:
        pytest.fail(f"read_portrait raised {seen['raised']} instead of a ServiceError "
                    "with a 4xx status", pytrace=False)
    pytest.fail("read_portrait accepted an input it must refuse", pytrace=False)


def pixels_of(seen: dict, what: str = "a good portrait") -> np.ndarray:
    if seen.get("refused"):
        pytest.fail(f"read_portrait refused {what} (status {seen['status']})", pytrace=False)
    if "raised" in seen:
        pytest.fail(f"read_portrait raised {seen['raised']} for {what}", pytrace=False)
    assert "pixels" in seen, "return a numpy array"
    pixels = seen["pixels"]
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8, (
        f"{what} gave {pixels.dtype} {pixels.shape}: return uint8 RGB pixels of the model's "
        "size, converted to RGB whatever the file's mode")
    return pixels


def mpo(pixels: np.ndarray) -> bytes:
    """A phone's photo: a JPEG with a second picture after it (Pillow's MPO format)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "MPO", save_all=True,
                                 append_images=[Image.fromarray(pixels[::-1])])
    return buffer.getvalue()


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# Exercise 6.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_decodes_png_and_jpeg(probe, portraits):
    """6.1 read_portrait reads PNG and JPEG by their bytes: phone photos, untyped uploads"""
    pixels = pixels_of(probe.read_portrait(to_png(portraits[0]), "image/png"))
    assert np.array_equal(pixels, portraits[0]), "a 64x64 PNG must come back pixel for pixel"
    pixels_of(probe.read_portrait(encode(portraits[1], "JPEG"), "image/jpeg"), "a JPEG")
    pixels_of(probe.read_portrait(mpo(portraits[1]), "image/jpeg"),
              "a phone's JPEG declared as image/jpeg (Pillow opens it as format MPO; its "
              "bytes begin like any JPEG's)")
    for content_type in (None, "application/octet-stream"):
        pixels = pixels_of(probe.read_portrait(to_png(portraits[2]), content_type),
                           f"a PNG uploaded with content type {content_type!r}, which "
                           "promises nothing: the bytes say what they are")
        assert np.array_equal(pixels, portraits[2]), (
            "a 64x64 PNG with no declared type must come back pixel for pixel")


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_converts_modes_and_crops_the_centre(probe, portraits):
    """6.1 grayscale, palette and RGBA images become RGB; oblong ones their centred square"""
    for mode in ("L", "P", "RGBA", "LA"):
        pixels_of(probe.read_portrait(encode(portraits[2], mode=mode), "image/png"),
                  f"a {mode} PNG")
    noise = np.random.default_rng(6).integers(0, 256, (64, 64, 3), np.uint8)
    for name, oblong in (("a 192x64 image", np.concatenate([noise, portraits[3], noise], 1)),
                         ("a 64x192 image", np.concatenate([noise, portraits[3], noise], 0))):
        pixels = pixels_of(probe.read_portrait(to_png(oblong), "image/png"), name)
        assert difference(pixels, portraits[3]) < 3, (
            f"{name} must become its centred square (cropped, then scaled), not a squashed "
            "copy of the whole picture")
    wide = np.kron(np.concatenate([noise, portraits[4], noise], 1), np.ones((3, 3, 1), np.uint8))
    pixels = pixels_of(probe.read_portrait(to_png(wide), "image/png"), "a 576x192 image")
    assert difference(pixels, portraits[4]) < 12, (
        "a 576x192 image must become its centred square, scaled to 64x64, not a squashed copy "
        "of the whole picture")


BAD_UPLOADS = {  # name: (bytes, declared type, limits, status, what the rule is)
    "a file over max_bytes": (lambda p: to_png(p), "image/png", "over", 413,
                              "too many bytes is too large content"),
    "a text/plain upload": (lambda p: b"garlic", "text/plain", {}, 415,
                            "a declared type that is not PNG or JPEG is unsupported"),
    "a text file uploaded without a content type": (
        lambda p: b"garlic and holy water", None, {}, 415,
        "bytes that are neither PNG nor JPEG, with no type declared, are an unsupported type"),
    "a JPEG declared as image/png": (
        lambda p: encode(p, "JPEG"), "image/png", {}, 415,
        "bytes that contradict their declared type are the wrong media type, not a broken "
        "image: sniff the format from the bytes"),
    "a PNG declared as image/jpeg": (
        lambda p: to_png(p), "image/jpeg", {}, 415,
        "bytes that contradict their declared type are the wrong media type, not a broken "
        "image: sniff the format from the bytes"),
    "bytes that are not an image, declared as image/png": (
        lambda p: b"not an image at all" * 20, "image/png", {}, 422,
        "bytes declared as an image that are no image at all are unprocessable content, not "
        "an unsupported type"),
    "a truncated PNG": (lambda p: to_png(p)[: len(to_png(p)) // 2], "image/png", {}, 422,
                        "a broken image is unprocessable content"),
    "an empty file": (lambda p: b"", "image/png", {}, 422,
                      "an empty file is unprocessable content"),
}


@pytest.mark.exercise("6.1")
@pytest.mark.points(3)
def test_read_portrait_refuses_bad_uploads_with_the_right_status(probe, portraits):
    """6.1 too large -> 413; unsupported or mismatched type -> 415; not an image -> 422"""
    for name, (make, content_type, limits, status, rule) in BAD_UPLOADS.items():
        data = make(portraits[4])
        if limits == "over":
            limits = {"max_bytes": len(data) - 1}
        got = refusal(probe, data, content_type, **limits)["status"]
        assert got == status, f"{name} got status {got}: {rule}"


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_refuses_bombs_from_the_header_alone(probe):
    """6.1 an image over max_pixels gets a 422, decided before any pixel is decoded"""
    seen = refusal(probe, png_claiming(60_000, 60_000), "image/png")
    assert seen["status"] == 422, f"a PNG claiming 60000x60000 pixels got status {seen['status']}"
    for name, data, limits in (
            ("a 600x600 PNG", encode(np.zeros((600, 600, 3), np.uint8)), {"max_pixels": 100_000}),
            ("a 2048x2048 JPEG", encode(np.zeros((2048, 2048, 3), np.uint8), "JPEG"),
             {"max_pixels": 10_000, "max_bytes": 10_000_000})):
        seen = refusal(probe, data, "image/png" if "PNG" in name else "image/jpeg", **limits)
        assert seen["status"] == 422, f"{name} over max_pixels got status {seen['status']}"
        assert not seen["decoded"], (
            f"{name} over max_pixels was decoded ({seen['decoded'][0][1]}x"
            f"{seen['decoded'][0][2]} pixels) before it was refused: hold the header's size "
            "against max_pixels before decoding anything")


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_read_portrait_decodes_a_large_jpeg_at_reduced_scale(probe, portraits):
    """6.1 a JPEG over max_pixels that fits at 1/8 scale is decoded at that reduced scale"""
    large = np.kron(portraits[5], np.ones((32, 32, 1), np.uint8))  # 2048 x 2048
    data = encode(large, "JPEG")
    seen = probe.read_portrait(data, "image/jpeg", max_pixels=100_000, max_bytes=10_000_000)
    pixels = pixels_of(seen, "a 2048x2048 JPEG with max_pixels=100,000 (at 1/8 scale it "
                       "decodes to 256x256: hold the reduced size, not the declared one, "
                       "against max_pixels)")
    assert seen["decoded"], "read_portrait returned pixels without decoding the file"
    largest = max(width * height for _, width, height in seen["decoded"])
    assert largest <= 100_000, (
        f"the 2048x2048 JPEG was decoded at {largest:,} pixels: decode JPEGs at reduced "
        "scale (Pillow's draft), never more than max_pixels")
    with Image.open(io.BytesIO(data)) as image:
        image.draft(None, (64, 64))
        expected = np.asarray(ImageOps.fit(image.convert("RGB"), (64, 64),
                                           Image.Resampling.BILINEAR))
    assert difference(pixels, expected) < 12, "the large JPEG came back as another picture"


# Exercise 6.2 ------------------------------------------------------------------------------
# The probe submits items to your MicroBatcher around a fake model that records every batch it
# is given and the thread that ran it (it answers 10 times each item); some scenes hold the
# model inside its first call while they queue, cancel and close around it.

def scene(seen: dict, hint: str) -> dict:
    """The scene's record, or a failure naming what never happened, and why it matters."""
    if seen.get("on_loop"):
        pytest.fail("run_batch ran on the event loop's thread, which stops every other "
                    "request meanwhile: run it on self.executor", pytrace=False)
    if "stuck" in seen:
        pytest.fail(f"{seen['stuck']}: {hint}", pytrace=False)
    return seen


def sizes(seen: dict) -> list[int]:
    return [len(batch) for batch in seen["batches"]]


@pytest.mark.exercise("6.2")
@pytest.mark.points(3)
def test_batcher_groups_concurrent_requests(probe):
    """6.2 eight concurrent requests with max_batch_size=4 make two model calls of four, at once"""
    seen = scene(probe.batcher(list(range(8)), 4, 10.0),
                 "every batch was full (max_batch_size=4, max_wait_s=10), and a full batch "
                 "goes to run_batch at once, without waiting for max_wait_s")
    assert sorted(sizes(seen)) == [4, 4], (
        f"eight requests at once with max_batch_size=4 made model calls of sizes "
        f"{sizes(seen)}: group waiting items into full batches, not one by one")
    assert seen["results"] == [10 * i for i in range(8)], (
        "each caller must get the result for its own item")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_closes_a_batch_after_max_wait(probe):
    """6.2 a batch that never fills is sent after max_wait_s, in one call"""
    seen = scene(probe.batcher([1, 2, 3], 100, 0.5, apart_s=0.02),
                 "a batch that never fills must go to run_batch with what has arrived once "
                 "max_wait_s has passed")
    assert len(seen["batches"]) == 1, (
        f"three requests arriving 20 ms apart, within max_wait_s=0.5 of the first, should "
        f"share one call, not {len(seen['batches'])}: wait for company up to max_wait_s")
    assert seen["results"] == [10, 20, 30], "each caller must get the result for its own item"


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_runs_the_model_off_the_event_loop(probe):
    """6.2 the model runs on a worker thread, not on the event loop's thread"""
    seen = scene(probe.batcher([1, 2, 3], 2, 0.01), "every item must get its answer")
    assert seen["model_threads"] >= 1, "run_batch was never called"
    assert seen["results"] == [10, 20, 30], "each caller must get the result for its own item"


@pytest.mark.exercise("6.2")
@pytest.mark.points(3)
def test_batcher_isolates_a_failing_request(probe):
    """6.2 when one item of a batch fails, only its caller gets the error"""
    seen = scene(probe.batcher([1, -1, 2, 3], 4, 10.0, fail_on=-1),
                 "when run_batch raises, every caller of that batch must still get an answer "
                 "(its own result, or the exception)")
    results = seen["results"]
    assert results[1] == {"raised": "ValueError"}, (
        "the caller of the failing item must get the model's exception")
    assert results[:1] + results[2:] == [10, 20, 30], (
        "the other callers in the failed batch must still get their own results")


def is_refusal(outcome: object, code: str) -> bool:
    return (isinstance(outcome, dict) and outcome.get("raised") == "ServiceError"
            and outcome.get("status") == 503 and outcome.get("code") == code)


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_refuses_at_once_when_the_queue_is_full(probe):
    """6.2 with max_queue items waiting, the next submit is refused at once with full()"""
    seen = scene(probe.full_queue(), "every caller that was not refused must get its answer")
    early = [outcome for outcome in seen["queued"].values() if outcome is not None]
    assert not early, (
        "with the model busy and max_queue=3, one of the first three waiting items was "
        f"answered or refused ({early[0]}) before the model was free: the item being run "
        "does not count as waiting")
    refused = seen["refused"]
    assert not refused.get("stuck"), (
        "a submit beyond max_queue waited instead of being refused at once")
    assert refused.get("raised") is not None, (
        "a submit beyond max_queue was accepted: refuse it with full(...)")
    assert is_refusal(refused, "full") and refused.get("retry_after"), (
        f"a submit beyond max_queue raised {refused.get('raised')} {refused.get('code', '')}: "
        "raise full(...), the 503 with Retry-After that the service answers")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_drops_requests_whose_caller_left(probe):
    """6.2 a cancelled submit never reaches run_batch, and frees its place in the queue"""
    seen = scene(probe.full_queue(), "every caller that was not refused must get its answer")
    reached = {item for batch in seen["batches"] for item in batch}
    assert 2 not in reached, (
        "an item whose caller gave up (its submit was cancelled) reached run_batch: take it "
        "out of the waiting items when its caller is cancelled")
    assert 4 not in reached, "an item refused for want of room reached run_batch"
    sixth = seen["sixth"]
    assert not (isinstance(sixth, dict) and "raised" in sixth), (
        f"after a waiting caller gave up, the next submit was refused ({sixth['raised']}): a "
        "caller that gave up must free its place in the queue")
    results = seen["results"]
    assert [results[item] for item in ("0", "1", "3", "5")] == [0, 10, 30, 50], (
        "the callers that stayed must each get the result for their own item")


@pytest.mark.exercise("6.2")
@pytest.mark.points(2)
def test_batcher_close_refuses_the_waiting_and_finishes_the_running(probe):
    """6.2 close() fails queued callers with closed() at once, and lets the running batch end"""
    seen = scene(probe.closing(), "close() must answer every caller")
    if seen.get("close_raised"):
        pytest.fail(f"close() raised {seen['close_raised']}", pytrace=False)
    waiting = seen["waiting"]
    assert None not in waiting, (
        "close() left the waiting callers waiting: fail each with closed() at once")
    assert all(is_refusal(outcome, "closed") for outcome in waiting), (
        f"a caller waiting at close() got {waiting[0]}: fail it with closed(), the 503 the "
        "service answers")
    assert seen["running_before_gate"] == [None] * 4, (
        "close() answered the callers whose batch run_batch was still running: let that "
        "batch finish")
    assert seen["close_returned"], (
        "close() never returned after the running batch finished: end the worker")
    assert seen["running"] == [0, 10, 20, 30], (
        "the callers whose batch was running when close() was called must get their results")
    assert is_refusal(seen["after"], "closed"), (
        "a submit after close() must be refused at once with closed()")


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
def client(probe, portraits):
    """Uploads to your app serving VampireNet (limit 100 kB), made once in the sandbox."""
    warm = to_png(portraits[7])
    yield lambda uploads: probe.predict(uploads, 100_000, warm)
    probe.close()


def error_body(response: dict) -> bool:
    body = response["body"] if isinstance(response["body"], dict) else {}
    error = body.get("error")
    return isinstance(error, dict) and set(error) == {"code", "message"}


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
        "a JPEG declared as image/png": (encode(portraits[1], "JPEG"), "image/png", 415),
        "bytes that are not an image": (b"not an image" * 50, "image/png", 422),
        "a truncated PNG": (good[: len(good) // 2], "image/png", 422),
        "a decompression bomb": (png_claiming(60_000, 60_000), "image/png", 422),
    }
    for name, (data, content_type, status) in bad.items():
        response, after = client([(data, content_type), (good, "image/png")])
        assert response["status"] == status, f"{name} got status {response['status']}"
        assert error_body(response), (
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


def crowd(probe) -> dict:
    seen = probe.crowd(to_png(make_portraits(1, seed=4)[0][0]))
    if "stuck" in seen:
        pytest.fail(f"{seen['stuck']}: eight requests to a warm service must all be answered",
                    pytrace=False)
    statuses = [answer["status"] for answer in seen["answers"]]
    assert statuses == [200] * len(statuses), (
        f"eight concurrent good portraits got statuses {statuses}")
    return seen


@pytest.mark.exercise("6.4")
@pytest.mark.points(2)
def test_predict_sends_concurrent_requests_through_the_batcher(probe):
    """6.4 concurrent requests reach the model in batches, through your batcher"""
    seen = crowd(probe)
    assert sum(seen["sizes"]) >= 8 and len(seen["sizes"]) < 8 and max(seen["sizes"]) > 1, (
        f"eight concurrent requests reached the model as calls of sizes {seen['sizes']}, one "
        "by one: submit each portrait to request.app.state.batcher")


@pytest.mark.exercise("6.4")
@pytest.mark.points(1)
def test_predict_reports_its_latency_in_milliseconds(probe):
    """6.4 latency_ms is the request's latency in milliseconds"""
    seen = crowd(probe)
    for answer in seen["answers"]:
        latency = answer["body"].get("latency_ms") if isinstance(answer["body"], dict) else None
        assert isinstance(latency, (int, float)), "the answer needs a number latency_ms"
        assert 40 <= latency < 60_000, (
            f"latency_ms was {latency:.3g} for a request whose model call alone took 50 ms: "
            "report milliseconds, not seconds")


@pytest.mark.exercise("6.4")
@pytest.mark.points(2)
def test_predict_answers_503_until_ready(probe):
    """6.4 POST /predict answers 503 with the error body at once while the model warms"""
    seen = probe.before_ready(to_png(make_portraits(1, seed=5)[0][0]))
    warming = seen["warming"]
    assert not warming.get("stuck"), (
        "a request sent while the model was warming waited for it instead of being refused "
        "at once with a 503")
    assert warming["status"] == 503, (
        f"a request sent while the model was warming got status {warming['status']}")
    assert error_body(warming) and warming["retry_after"], (
        "a 503 while warming needs the one error body (raise a ServiceError), which also "
        "tells the client when to retry")
    assert seen["warm"]["status"] == 200, (
        f"once the model was warm, a good portrait got status {seen['warm']['status']}")
