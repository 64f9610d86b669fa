"""The managed platforms' contracts, served by the course's own app: recorded-shape requests.

SageMaker: ``GET /ping``, ``POST /invocations`` with the image bytes and their content type.
Vertex AI: routes from ``AIP_HEALTH_ROUTE`` / ``AIP_PREDICT_ROUTE``, JSON ``{"instances":
[{"b64": ...}]}`` in, ``{"predictions": [...]}`` out. Bad requests: a 4xx with a reason.
"""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from vampire_detector.images import encode, to_png
from vampire_detector.platforms import sagemaker_app, vertex_app, vertex_routes
from vampire_detector.portraits import make_portraits
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.torch_serving import create_app

SETTINGS = ServiceSettings(runtime="eager", max_upload_bytes=100_000, max_batch_files=4,
                           max_batch_size=4, warmup_batches=1)
_IMAGES, _LABELS = make_portraits(12, seed=41)
# vampire, human, vampire: an answer in the wrong order cannot pass
PORTRAITS = [_IMAGES[_LABELS == 1][0], _IMAGES[_LABELS == 0][0], _IMAGES[_LABELS == 1][1]]
ROUTES = {"AIP_HTTP_PORT": "8080", "AIP_HEALTH_ROUTE": "/health",  # shadows the service's own
          "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict"}


@pytest.fixture(scope="module")
def sagemaker():
    with TestClient(sagemaker_app(SETTINGS, load_in_background=False)) as client:
        yield client


@pytest.fixture(scope="module")
def vertex():
    with TestClient(vertex_app(SETTINGS, env=ROUTES, load_in_background=False)) as client:
        yield client


@pytest.fixture(scope="module")
def reference():
    """The plain service: what the platform routes must agree with."""
    with TestClient(create_app(SETTINGS, load_in_background=False)) as client:
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def expected(reference, image) -> dict:
    answer = reference.post("/predict", files={"image": ("p.png", to_png(image), "image/png")})
    return {"label": answer.json()["label"], "probability": answer.json()["probability"]}


def test_sagemaker_ping_and_invocations(sagemaker, reference):
    assert sagemaker.get("/ping").status_code == 200
    answer = sagemaker.post("/invocations", content=to_png(PORTRAITS[0]),
                            headers={"content-type": "image/png", "accept": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == pytest.approx(expected(reference, PORTRAITS[0]))


@pytest.mark.parametrize(("content", "headers", "status", "code"), [
    (b"", {"content-type": "image/png"}, 400, "empty"),
    (b"not an image", {"content-type": "image/png"}, 422, "undecodable"),
    (b'{"instances": []}', {"content-type": "application/json"}, 415, "unsupported_media_type"),
    (b"x" * 100_001, {"content-type": "image/png"}, 413, "too_large"),
    (b"x", {"content-type": "image/png", "accept": "text/csv"}, 406, "not_acceptable"),
])
def test_sagemaker_refuses_bad_invocations_with_a_reason(sagemaker, content, headers, status,
                                                          code):
    answer = sagemaker.post("/invocations", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and (code is None or error["code"] == code)


def test_sagemaker_passes_a_jpeg_through_the_services_own_checks(sagemaker):
    answer = sagemaker.post("/invocations", content=encode(PORTRAITS[1], "JPEG"),
                            headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200 and answer.json()["label"] in {"human", "vampire"}


def test_vertex_routes_come_from_the_aip_variables():
    assert vertex_routes(ROUTES) == (8080, "/health", ROUTES["AIP_PREDICT_ROUTE"])
    port, health, predict = vertex_routes({})
    assert port == 8080 and predict.endswith(":predict") and health.startswith("/v1/")


def test_vertex_health_and_predictions_in_order(vertex, reference):
    assert vertex.get("/health").json() == {"ready": True}
    body = {"instances": [{"b64": b64(to_png(image))} for image in PORTRAITS]}
    answer = vertex.post(ROUTES["AIP_PREDICT_ROUTE"], json=body)
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    wanted = [expected(reference, image) for image in PORTRAITS]
    assert [p["label"] for p in predictions] == [w["label"] for w in wanted]
    assert [p["probability"] for p in predictions] == pytest.approx(
        [w["probability"] for w in wanted], abs=1e-5)


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"not json", 400, "not_json"),
    (json.dumps([1, 2]).encode(), 400, "no_instances"),
    (json.dumps({"instances": []}).encode(), 400, "no_instances"),
    (json.dumps({"inputs": [{"b64": "AA=="}]}).encode(), 400, "no_instances"),
    (json.dumps({"instances": [{"image": "AA=="}]}).encode(), 400, "bad_instance"),
    (json.dumps({"instances": ["AA=="]}).encode(), 400, "bad_instance"),
    (json.dumps({"instances": [{"b64": "not base64!"}]}).encode(), 400, "bad_base64"),
    (json.dumps({"instances": [{"b64": b64(b"GIF89a")}]}).encode(), 415, None),
    (json.dumps({"instances": [{"b64": "AA=="}] * 5}).encode(), 413, "too_many_instances"),
])
def test_vertex_refuses_bad_requests_with_a_reason(vertex, body, status, code):
    answer = vertex.post(ROUTES["AIP_PREDICT_ROUTE"], content=body,
                         headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and (code is None or error["code"] == code)


def test_the_services_own_routes_still_answer(vertex):
    image = to_png(PORTRAITS[2])
    assert vertex.post("/predict", files={"image": ("p.png", image, "image/png")}).status_code \
        == 200
