"""The service through HTTP: every endpoint, every class of bad input, and life after each."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from vampire_detector.detector import Detector, Predictor
from vampire_detector.harness.hostile import png_claiming
from vampire_detector.images import encode, to_png
from vampire_detector.service.runtimes import LoadedModel
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.torch_serving import create_app


def post(client: TestClient, data: bytes, content_type: str = "image/png"):
    return client.post("/predict", files={"image": ("portrait.png", data, content_type)})


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code is not None:
        assert error["code"] == code


def test_predict_matches_the_eager_detector(client, portraits):
    expected = Detector.from_weights("vampirenet", device=torch.device("cpu")).predict(portraits)
    for pixels, truth in zip(portraits, expected, strict=True):
        body = post(client, to_png(pixels)).json()
        assert body["label"] == truth.label
        assert body["probability"] == pytest.approx(truth.probability, abs=1e-5)
        assert body["model_version"].startswith("vampirenet-eager-")
        assert body["latency_ms"] > 0


def test_batch_answers_in_upload_order(client, portraits):
    files = [("images", (f"{i}.png", to_png(p), "image/png")) for i, p in enumerate(portraits[:3])]
    body = client.post("/predict/batch", files=files).json()
    singles = [post(client, to_png(p)).json()["label"] for p in portraits[:3]]
    assert [p["label"] for p in body["predictions"]] == singles


def test_probes_and_docs(client):
    assert client.get("/health").json() == {"status": "alive"}
    ready = client.get("/ready").json()
    assert ready["ready"] is True and ready["runtime"] == "eager"
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/health", "/ready"} <= set(schema["paths"])
    assert "413" in schema["paths"]["/predict"]["post"]["responses"]
    assert "examples" in schema["components"]["schemas"]["PredictionOut"]
    assert client.get("/docs").status_code == 200


BAD_UPLOADS = {  # name: (bytes, content type, status, code)
    "too large": (b"\x89PNG" + b"0" * 200_000, "image/png", 413, "too_large"),
    "wrong type": (b"garlic", "text/plain", 415, "unsupported_media_type"),
    "format mismatch": (None, "image/png", 415, "format_mismatch"),  # a JPEG, declared PNG
    "not an image": (b"holy water" * 30, "image/png", 422, "undecodable"),
    "truncated": ("truncated", "image/png", 422, "undecodable"),
    "bomb": (png_claiming(80_000, 80_000), "image/png", 422, "too_many_pixels"),
    "too small": ("tiny", "image/png", 422, "too_small"),
    "16-bit": ("16-bit", "image/png", 422, "unsupported_mode"),
    "empty": (b"", "image/png", 422, "empty"),
}


def bad_bytes(name: str, portraits: np.ndarray) -> bytes:
    from PIL import Image

    data = BAD_UPLOADS[name][0]
    if data is None:
        return encode(portraits[0], "JPEG")
    if data == "truncated":
        big = encode(np.kron(portraits[0], np.ones((4, 4, 1), np.uint8)))
        return big[: len(big) // 2]
    if data == "tiny":
        return encode(portraits[0][:8, :8])
    if data == "16-bit":
        return encode(Image.fromarray(np.full((64, 64), 999, np.uint16)))
    return data


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_uploads_get_a_clear_4xx_and_the_service_keeps_serving(client, portraits, name):
    _, content_type, status, code = BAD_UPLOADS[name]
    assert_error(post(client, bad_bytes(name, portraits), content_type), status, code)
    assert post(client, to_png(portraits[1])).status_code == 200


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA"])
def test_other_modes_and_sizes_are_converted(client, portraits, mode):
    assert post(client, encode(portraits[2], mode=mode)).status_code == 200
    huge = np.kron(portraits[2], np.ones((8, 12, 1), np.uint8))  # 512 x 768
    assert post(client, encode(huge, "JPEG"), "image/jpeg").status_code == 200


def test_malformed_requests(client, portraits):
    assert_error(client.post("/predict", data={"picture": "x"}), 422, "invalid_request")
    assert_error(client.post("/predict", content=b"{}",
                             headers={"content-type": "application/json"}), 422)
    assert_error(client.get("/predict"), 405, "method_not_allowed")
    assert_error(client.get("/garlic"), 404, "not_found")
    chunks = iter([b"x" * 50_000] * 10)  # no Content-Length: cut off while streaming
    assert_error(client.post("/predict", content=chunks, headers={
        "content-type": "multipart/form-data; boundary=b"}), 413, "too_large")
    assert post(client, to_png(portraits[3])).status_code == 200


def test_batch_refusals(client, portraits):
    good = to_png(portraits[0])
    too_many = [("images", (f"{i}.png", good, "image/png")) for i in range(5)]
    assert_error(client.post("/predict/batch", files=too_many), 413, "too_many_files")
    one_bad = [("images", ("a.png", good, "image/png")), ("images", ("b.txt", b"x", "text/plain"))]
    response = client.post("/predict/batch", files=one_bad)
    assert_error(response, 415)
    assert "images[1]" in response.json()["error"]["message"]


class Gate(Predictor):
    def __init__(self, fail: bool = False):
        self.open, self.fail = threading.Event(), fail

    def probabilities(self, images):
        assert self.open.wait(20)
        if self.fail:
            raise RuntimeError("the model broke")
        return np.tile(np.float32([[0.2, 0.8]]), (len(images), 1))


def test_not_ready_until_warmed(portraits):
    gate = Gate()
    app = create_app(ServiceSettings(runtime="eager", warmup_batches=1),
                     loader=lambda settings: LoadedModel(gate, "gate-1"))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/ready"), 503, "not_ready")
        assert_error(post(client, to_png(portraits[0])), 503, "not_ready")
        gate.open.set()
        while client.get("/ready").status_code != 200:
            threading.Event().wait(0.01)
        assert post(client, to_png(portraits[0])).json()["model_version"] == "gate-1"


def test_a_model_that_fails_to_load_makes_the_service_unhealthy():
    def broken(settings):
        raise FileNotFoundError("no such model")

    with TestClient(create_app(ServiceSettings(), loader=broken)) as client:
        while client.get("/health").status_code == 200:
            threading.Event().wait(0.01)
        assert_error(client.get("/health"), 503, "model_failed")
        assert_error(client.get("/ready"), 503, "not_ready")


def test_a_failing_model_gives_a_structured_500(portraits):
    gate = Gate(fail=True)
    gate.open.set()
    app = create_app(ServiceSettings(warmup_batches=0), load_in_background=False,
                     loader=lambda settings: LoadedModel(gate, "broken"))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_error(post(client, to_png(portraits[0])), 500, "internal")
        assert client.get("/health").status_code == 200


def test_every_answer_carries_a_request_id(client, portraits):
    good = client.post("/predict", files={"image": ("p.png", to_png(portraits[0]), "image/png")},
                       headers={"X-Request-ID": "coach-7.seat_3"})
    assert good.headers["X-Request-ID"] == "coach-7.seat_3"
    assert set(good.json()) == {"label", "probability", "model_version", "latency_ms"}
    refused = post(client, b"garlic", "text/plain")
    assert_error(refused, 415, "unsupported_media_type")
    assert refused.json()["request_id"] == refused.headers["X-Request-ID"]
    assert "shadow_version" not in client.get("/ready").json()
