"""One JSON line per request, a request id on every response, and nothing secret in either."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vampire_detector.images import to_png
from vampire_detector.predictor import Predictor
from vampire_detector.service.app import create_app
from vampire_detector.service.request_log import (
    ACCESS_LOGGER,
    JsonFormatter,
    TextFormatter,
    request_id_for,
)
from vampire_detector.service.runtimes import LoadedModel
from vampire_detector.service.settings import ServiceSettings

KEY = "garlic-and-stakes-0123456789"
LINE_KEYS = {"ts", "event", "request_id", "method", "route", "status", "latency_ms",
             "model_version"}


class Constant(Predictor):
    def probabilities(self, images):
        return np.tile(np.float32([[0.2, 0.8]]), (len(images), 1))


def constant(settings: ServiceSettings) -> LoadedModel:
    return LoadedModel(Constant(), "constant-1")


@contextlib.contextmanager
def service(**options) -> Iterator[tuple[TestClient, io.StringIO]]:
    """A ready service whose stderr (where the access log writes) is captured."""
    settings = ServiceSettings(warmup_batches=0, max_upload_bytes=100_000, max_batch_files=4,
                               **options)
    stderr = io.StringIO()
    app = create_app(settings, loader=constant, load_in_background=False)
    with contextlib.redirect_stderr(stderr), TestClient(app, raise_server_exceptions=False) as c:
        yield c, stderr


def lines(stderr: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stderr.getvalue().splitlines() if line.strip()]


def predict(client, data: bytes, content_type: str = "image/png", **headers: str):
    return client.post("/predict", files={"image": ("p.png", data, content_type)},
                       headers=headers)


@pytest.fixture(scope="module")
def png(portraits) -> bytes:
    return to_png(portraits[0])


def test_one_json_line_per_request_with_the_schema(png):
    with service(api_keys_sha256=hashlib.sha256(KEY.encode()).hexdigest()) as (client, stderr):
        answer = predict(client, png, **{"X-API-Key": KEY, "X-Request-ID": "traveller-1"})
        files = [("images", (f"{i}.png", png, "image/png")) for i in range(3)]
        batch = client.post("/predict/batch", files=files, headers={"X-API-Key": KEY})
        client.get("/crypt/door-7")
    assert answer.status_code == 200 and batch.status_code == 200
    single, many, scanner = lines(stderr)
    for line in (single, many, scanner):
        assert set(line) >= LINE_KEYS, line
        assert line["ts"].endswith("Z") and datetime.fromisoformat(line["ts"][:-1])
        assert line["model_version"] == "constant-1" and line["latency_ms"] > 0
    assert single["request_id"] == "traveller-1" == answer.headers["X-Request-ID"]
    assert (single["method"], single["route"], single["status"]) == ("POST", "/predict", 200)
    assert single["event"] == "request"
    assert single["label"] == "vampire" and single["probability"] == pytest.approx(0.8)
    assert many["route"] == "/predict/batch" and many["count"] == 3
    assert many["labels"] == {"vampire": 3} and "label" not in many  # one line, not three
    assert scanner["route"] == "unmatched" and scanner["status"] == 404  # never the raw path
    assert scanner["error"] == "not_found"


def test_the_portrait_and_the_key_never_reach_the_log(png):
    with service(api_keys_sha256=hashlib.sha256(KEY.encode()).hexdigest()) as (client, stderr):
        predict(client, png, **{"X-API-Key": KEY, "User-Agent": "van-helsing/1.0"})
        predict(client, png, **{"X-API-Key": "a-wrong-" + KEY})
    text = stderr.getvalue()
    assert len(lines(stderr)) == 2
    assert KEY not in text and "van-helsing" not in text
    for chunk in (png[:16], png[100:116], png[-16:]):  # no piece of the image, in any form
        assert chunk.hex() not in text and repr(chunk)[2:-1] not in text
    assert "PNG" not in text and "IHDR" not in text


REFUSALS = {  # status: (how to be refused, its code)
    401: (lambda c, png: predict(c, png), "missing_api_key"),
    403: (lambda c, png: predict(c, png, **{"X-API-Key": "wrong"}), "invalid_api_key"),
    413: (lambda c, png: predict(c, b"\x89PNG" + b"0" * 150_000, **{"X-API-Key": KEY}),
          "too_large"),
    415: (lambda c, png: predict(c, b"garlic", "text/plain", **{"X-API-Key": KEY}),
          "unsupported_media_type"),
    422: (lambda c, png: c.post("/predict", data={"x": "1"}, headers={"X-API-Key": KEY}),
          "invalid_request"),
}


@pytest.mark.parametrize("status", list(REFUSALS))
def test_refusals_get_a_line_with_their_code_and_the_id(png, status):
    send, code = REFUSALS[status]
    with service(api_keys_sha256=hashlib.sha256(KEY.encode()).hexdigest()) as (client, stderr):
        response = send(client, png)
    assert response.status_code == status, response.text
    (line,) = lines(stderr)
    assert line["status"] == status and line["route"] == "/predict"
    assert line["error"] == code == response.json()["error"]["code"]
    assert line["request_id"] == response.headers["X-Request-ID"] == response.json()["request_id"]


def test_a_body_refused_before_routing_gets_the_id_too(png):
    with service() as (client, stderr):
        chunks = iter([b"x" * 50_000] * 10)  # no Content-Length: BodyLimit cuts it off
        response = client.post("/predict", content=chunks, headers={
            "content-type": "multipart/form-data; boundary=b", "X-Request-ID": "slow.coach"})
        declared = client.post("/predict", content=b"x" * 300_000,
                               headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and response.headers["X-Request-ID"] == "slow.coach"
    assert response.json()["request_id"] == "slow.coach"
    assert declared.status_code == 413 and declared.json()["request_id"]
    assert [line["error"] for line in lines(stderr)] == ["too_large", "too_large"]


@pytest.mark.parametrize("given", ["", "has space", "x" * 65, "new\nline", "quote\"d", "ü-id",
                                   "a/b"])
def test_a_malformed_id_is_replaced(given):
    from starlette.datastructures import Headers

    fresh = request_id_for(Headers({"x-request-id": given}))
    assert fresh != given and re.fullmatch(r"[0-9a-f]{32}", fresh)


@pytest.mark.parametrize("given", ["a", "x" * 64, "Trace-1.2_3"])
def test_a_well_formed_id_is_kept(given):
    from starlette.datastructures import Headers

    assert request_id_for(Headers({"x-request-id": given})) == given


def test_every_response_echoes_an_id_errors_and_probes_included(png):
    with service() as (client, stderr):
        responses = [client.get("/health"), client.get("/ready"), client.get("/metrics"),
                     client.get("/garlic"), client.get("/predict"),
                     predict(client, png, **{"X-Request-ID": "bad id"})]
    ids = [r.headers.get("X-Request-ID") for r in responses]
    assert all(ids) and len(set(ids)) == len(ids) and "bad id" not in ids
    assert [line["request_id"] for line in lines(stderr)] == ids
    for response in responses[3:5]:
        assert response.json()["request_id"] == response.headers["X-Request-ID"]
        assert set(response.json()["error"]) == {"code", "message"}  # the error itself unchanged


def test_a_crash_answers_500_with_the_id():
    class Broken(Predictor):
        def probabilities(self, images):
            raise RuntimeError("the model broke")

    settings = ServiceSettings(warmup_batches=0)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), TestClient(
            create_app(settings, loader=lambda s: LoadedModel(Broken(), "broken"),
                       load_in_background=False), raise_server_exceptions=False) as client:
        response = predict(client, to_png(np.zeros((64, 64, 3), np.uint8)),
                           **{"X-Request-ID": "doomed"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "doomed" == response.json()["request_id"]
    (line,) = [line for line in lines(stderr) if line.get("event") == "request"]
    assert line["status"] == 500 and line["request_id"] == "doomed"


def test_access_log_off_writes_nothing_but_still_gives_ids(png):
    with service(access_log=False) as (client, stderr):
        response = predict(client, png)
    assert response.status_code == 200 and response.headers["X-Request-ID"]
    assert stderr.getvalue() == ""


def test_text_format_is_one_line_of_pairs(png):
    with service(log_format="text") as (client, stderr):
        predict(client, png, **{"X-Request-ID": "t-1"})
    (line,) = stderr.getvalue().splitlines()
    assert 'request_id="t-1"' in line and "status=200" in line and 'route="/predict"' in line


def test_the_formatters_keep_every_line_one_line():
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "request", None, None)
    record.access = {"event": "request", "note": "two\nlines"}
    for formatter in (JsonFormatter(), TextFormatter()):
        assert "\n" not in formatter.format(record)
    plain = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    assert json.loads(JsonFormatter().format(plain))["message"] == "hello world"


def test_invalid_log_settings_are_refused():
    with pytest.raises(ValueError):
        ServiceSettings(log_format="xml")
    with pytest.raises(ValueError):
        ServiceSettings(access_log="sometimes")


def test_the_rate_limit_and_the_loading_model_are_logged_too(png):
    with service(rate_limit_per_s=0.01, rate_limit_burst=1) as (client, stderr):
        assert predict(client, png).status_code == 200
        assert predict(client, png).status_code == 429
    assert [(line["status"], line.get("error")) for line in lines(stderr)] == [
        (200, None), (429, "rate_limited")]
    loaded = threading.Event()

    def slow(settings):
        assert loaded.wait(20)
        return constant(settings)

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), TestClient(create_app(
            ServiceSettings(warmup_batches=0), loader=slow)) as client:
        response = client.get("/ready")
        loaded.set()
    assert response.status_code == 503
    (line,) = lines(stderr)
    assert line["error"] == "not_ready" and line["model_version"] is None
