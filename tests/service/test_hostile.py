"""Hostile clients against the service: one test per attack class, each failing without its defence.

Memory and CPU bounds are measured by ``benchmarks/bench_hostile.py``, not timed here. The app
below runs a fake model (no PyTorch), so each test controls exactly when the model answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from vampire_detector.harness.hostile import (
    broken_exif,
    jpeg_with_scans,
    lossless_webp,
    mpo,
    with_exif,
)
from vampire_detector.images import encode, to_png
from vampire_detector.predictor import Predictor
from vampire_detector.service import decoding
from vampire_detector.service.app import create_app
from vampire_detector.service.runtimes import LoadedModel
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.service.uploads import (
    UploadLimits,
    count_jpeg_scans,
    decode,
    open_portrait,
)

SETTINGS = ServiceSettings(max_upload_bytes=100_000, max_batch_files=4, max_batch_size=1,
                           max_queue=2, warmup_batches=0, max_decodes=1, max_decodes_waiting=0,
                           body_idle_timeout_s=0.5)


class Gate(Predictor):
    """A constant model whose batcher calls wait while ``hold`` is set.

    Only calls on the batcher's thread (named ``model...``) wait: the drift watch's own
    calibration calls pass, so they never block a test or count as traffic.
    """

    def __init__(self) -> None:
        self.opened, self.entered = threading.Event(), threading.Event()
        self.opened.set()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        if threading.current_thread().name.startswith("model"):
            self.entered.set()
            assert self.opened.wait(20)
        return np.tile(np.float32([[0.3, 0.7]]), (len(images), 1))


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def client(gate) -> Iterator[TestClient]:
    app = create_app(SETTINGS, load_in_background=False,
                     loader=lambda settings: LoadedModel(gate, "gate-1"))
    with TestClient(app) as client:
        yield client


def post(client: TestClient, data: bytes, content_type: str = "image/png") -> httpx.Response:
    return client.post("/predict", files={"image": ("portrait", data, content_type)})


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message"}
    if code is not None:
        assert response.json()["error"]["code"] == code
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 1


def items_run(client: TestClient) -> int:
    """Images that reached the model through the batcher."""
    return client.app.state.service.batcher.stats.items


def hold_the_model(client: TestClient, gate: Gate, portrait: np.ndarray,
                   pool: concurrent.futures.Executor) -> concurrent.futures.Future:
    """One request that occupies the model until ``gate.opened`` is set again."""
    gate.opened.clear()
    busy = pool.submit(post, client, to_png(portrait))
    assert gate.entered.wait(10)
    return busy


# --- Bounded work per upload ----------------------------------------------------------------

def record_where_it_decodes(monkeypatch) -> list[bool]:
    """Wrap the costly decode step; each call appends whether it ran on the event loop."""
    on_loop, finish = [], decoding.finish_portrait

    def recorded(*args):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return finish(*args)

    monkeypatch.setattr(decoding, "finish_portrait", recorded)
    return on_loop


def test_a_tiny_file_declaring_a_large_image_decodes_off_the_event_loop(client, portraits,
                                                                       monkeypatch):
    on_loop = record_where_it_decodes(monkeypatch)
    small_bytes_many_pixels = lossless_webp(1024)
    assert len(small_bytes_many_pixels) < 2_000
    assert post(client, small_bytes_many_pixels, "image/webp").status_code == 200
    assert post(client, to_png(portraits[0])).status_code == 200  # 64 x 64: inline is cheaper
    assert on_loop == [False, True]


def test_large_decodes_beyond_the_slots_get_503_with_retry_after(client, monkeypatch):
    started, release = threading.Event(), threading.Event()
    finish = decoding.finish_portrait

    def slow(*args):
        started.set()
        release.wait(5)  # without the limiter, the second decode would start, and succeed
        return finish(*args)

    monkeypatch.setattr(decoding, "finish_portrait", slow)
    large = lossless_webp(512)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, client, large, "image/webp")
        assert started.wait(10)
        try:
            assert_error(post(client, large, "image/webp"), 503, "busy")
        finally:
            release.set()
        assert first.result(10).status_code == 200


def test_large_images_decode_at_reduced_scale(portraits):
    limits = UploadLimits(max_bytes=10_000_000, max_pixels=4096 ** 2, image_size=64)
    big = np.kron(portraits[0], np.ones((32, 32, 1), np.uint8))  # 2048 x 2048
    jpeg = encode(big, "JPEG")
    with open_portrait(jpeg, "image/jpeg", limits) as image:
        decode(image, limits.image_size)
        assert image.size == (256, 256)  # libjpeg decoded at 1/8 scale: 64x fewer pixels
    png = encode(big[:1024, :1024])
    with open_portrait(png, "image/png", limits) as image:
        assert max(decode(image, limits.image_size).size) < 256  # shrunk before converting


def test_a_jpeg_with_thousands_of_scans_is_refused(client, portraits):
    progressive = jpeg_with_scans(portraits[1], 0)
    assert 2 <= count_jpeg_scans(progressive, 1000) <= 12
    assert post(client, progressive, "image/jpeg").status_code == 200
    bomb = jpeg_with_scans(np.full((64, 64, 3), 90, np.uint8), 150)  # flat: tiny scans
    assert count_jpeg_scans(bomb, 1000) > SETTINGS.max_jpeg_scans
    assert_error(post(client, bomb, "image/jpeg"), 422, "too_many_scans")


def test_scans_are_counted_by_walking_markers_not_by_searching_bytes(portraits):
    """An MPO's second picture, or a thumbnail, holds SOS bytes that are not the image's scans."""
    assert count_jpeg_scans(encode(portraits[2], "JPEG"), 1000) == 1
    assert count_jpeg_scans(mpo(portraits[2]), 1000) == 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_unreadable_exif_is_ignored_never_a_500(client, portraits, fmt):
    data = with_exif(portraits[3], fmt, broken_exif())
    response = post(client, data, f"image/{fmt.lower()}")
    assert response.status_code == 200, response.text


# --- Bounded telemetry ----------------------------------------------------------------------

def test_unknown_methods_fold_into_one_label(client):
    for index in range(20):
        assert client.request(f"GARLIC{index}", "/health").status_code == 405
    text = client.get("/metrics").text
    assert "GARLIC" not in text
    assert 'method="other",route="/health",status="405"' in text


def test_metrics_render_off_the_event_loop(client, monkeypatch):
    metrics, on_loop = client.app.state.metrics, []
    render = metrics.exposition

    def recorded() -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return render()

    monkeypatch.setattr(metrics, "exposition", recorded)
    assert client.get("/metrics").status_code == 200
    assert on_loop == [False]


# --- Real-world uploads ---------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "content_type"), [
    ("mpo", "image/jpeg"), ("jpeg", "image/jpg"), ("png", "application/octet-stream"),
    ("webp", "application/octet-stream")])
def test_phone_photos_and_loose_content_types_are_accepted(client, portraits, kind,
                                                           content_type):
    data = mpo(portraits[4]) if kind == "mpo" else encode(portraits[4], kind.upper())
    response = post(client, data, content_type)
    assert response.status_code == 200, response.text


def test_the_bytes_decide_when_the_type_is_only_a_hint(client, portraits):
    assert_error(post(client, b"garlic" * 50, "application/octet-stream"), 415,
                 "unsupported_media_type")
    assert_error(post(client, encode(portraits[4], "JPEG"), "image/png"), 415,
                 "format_mismatch")


def test_two_images_to_predict_are_refused(client, portraits):
    two = [("image", ("a.png", to_png(portraits[0]), "image/png")),
           ("image", ("b.png", to_png(portraits[1]), "image/png"))]
    response = client.post("/predict", files=two)
    assert_error(response, 400, "bad_request")
    assert "files" in response.json()["error"]["message"].lower()


def test_a_flood_of_form_fields_is_refused(client, portraits):
    fields = {f"garlic{index}": "x" for index in range(50)}
    response = client.post("/predict", data=fields,
                           files={"image": ("a.png", to_png(portraits[0]), "image/png")})
    assert_error(response, 400, "bad_request")


# --- Overload, disconnects, shutdown --------------------------------------------------------

def test_not_ready_is_a_503_with_retry_after(gate, portraits):
    gate.opened.clear()
    loading = threading.Event()

    def slow_loader(settings):
        assert loading.wait(20)
        return LoadedModel(gate, "gate-1")

    with TestClient(create_app(SETTINGS, loader=slow_loader)) as client:
        assert_error(client.get("/ready"), 503, "not_ready")
        assert_error(post(client, to_png(portraits[0])), 503, "not_ready")
        loading.set()
        gate.opened.set()


def test_a_refused_batch_runs_none_of_its_images(client, gate, portraits):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = hold_the_model(client, gate, portraits[0], pool)
        files = [("images", (f"{i}.png", to_png(p), "image/png"))
                 for i, p in enumerate(portraits[:3])]  # 3 images, 2 places in the queue
        try:
            assert_error(client.post("/predict/batch", files=files), 503, "busy")
        finally:
            gate.opened.set()
        assert busy.result(10).status_code == 200
    assert client.post("/predict", files={"image": ("a.png", to_png(portraits[1]),
                                                    "image/png")}).status_code == 200
    assert items_run(client) == 2  # the held request and the last one: no part of the batch


async def leave_at_once(app, request: httpx.Request) -> int:
    """Send ``request`` to the ASGI app as a client that disconnects right after its body."""
    body, sent = request.read(), []

    async def receive():
        if not sent:
            sent.append(True)
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return (await call(app, request, receive))[0]


async def trickle(app, request: httpx.Request) -> tuple[int, dict[bytes, bytes]]:
    """Send half of ``request``'s body, then nothing for a minute."""
    body, sent = request.read(), []

    async def receive():
        if not sent:
            sent.append(True)
            return {"type": "http.request", "body": body[:len(body) // 2], "more_body": True}
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    return await call(app, request, receive)


async def call(app, request: httpx.Request, receive) -> tuple[int, dict[bytes, bytes]]:
    """The status and headers of the app's answer to ``request``, its body from ``receive``."""
    status, headers = [], []

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
            headers.extend(message["headers"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": request.method, "scheme": "http", "path": request.url.path,
             "raw_path": request.url.raw_path, "query_string": b"", "root_path": "",
             "headers": [(k.lower(), v) for k, v in request.headers.raw],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {}}
    await app(scope, receive, send)
    return status[0], dict(headers)


def test_a_client_that_leaves_costs_no_model_call(client, gate, portraits):
    request = httpx.Request("POST", "http://testserver/predict", files={
        "image": ("a.png", to_png(portraits[2]), "image/png")})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = hold_the_model(client, gate, portraits[0], pool)
        leaving = client.portal.start_task_soon(leave_at_once, client.app, request)
        try:
            assert leaving.result(5) == 499  # without the defence, it waits for the model
        finally:
            gate.opened.set()
        assert busy.result(10).status_code == 200
    time.sleep(0.2)  # had its image been queued, the batcher would run it now
    assert items_run(client) == 1


def test_a_body_that_stops_arriving_gets_408(client, portraits):
    request = httpx.Request("POST", "http://testserver/predict", files={
        "image": ("a.png", to_png(portraits[2]), "image/png")})
    start = time.monotonic()
    status, headers = client.portal.call(trickle, client.app, request)
    assert status == 408
    assert time.monotonic() - start < 10  # the client's minute of silence was not waited out
    assert headers[b"connection"] == b"close"  # its connection, and its place, are freed


def test_shutdown_answers_waiting_requests_with_a_json_503(client, gate, portraits):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        busy = hold_the_model(client, gate, portraits[0], pool)
        waiting = pool.submit(post, client, to_png(portraits[1]))
        deadline = time.monotonic() + 10
        while client.app.state.service.batcher._queue.qsize() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stopping = client.portal.start_task_soon(client.app.state.service.batcher.stop)
        time.sleep(0.1)
        gate.opened.set()
        stopping.result(10)
        for response in (busy.result(10), waiting.result(10)):
            assert_error(response, 503, "shutting_down")
    assert_error(client.get("/ready"), 503, "not_ready")


def test_a_crashed_batcher_turns_readiness_false(client, portraits):
    batcher = client.app.state.service.batcher

    async def broken(batch):
        raise RuntimeError("a bug in the batcher")

    batcher._collect = broken  # the worker's next collection crashes it
    assert post(client, to_png(portraits[0])).status_code == 200  # the one already collecting
    deadline = time.monotonic() + 10
    while client.get("/ready").status_code == 200:
        assert time.monotonic() < deadline, "a dead batcher still reports ready"
        time.sleep(0.01)
    assert_error(client.get("/ready"), 503, "not_ready")
    assert_error(post(client, to_png(portraits[0])), 503, "not_ready")

