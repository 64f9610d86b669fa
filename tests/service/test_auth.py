"""API keys and rate limits: who may ask, how often, and what a stranger costs the service."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vampire_detector.images import to_png
from vampire_detector.predictor import Predictor
from vampire_detector.service import auth
from vampire_detector.service.app import create_app
from vampire_detector.service.auth import ApiKeys, TokenBuckets, digest, parse_digests
from vampire_detector.service.errors import ServiceError
from vampire_detector.service.runtimes import LoadedModel
from vampire_detector.service.settings import ServiceSettings

KEYS = ["renfield-0001", "van-helsing-0002"]


class Constant(Predictor):
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.tile(np.float32([[0.3, 0.7]]), (len(images), 1))


def app_with(**settings):
    return create_app(ServiceSettings(warmup_batches=0, **settings), load_in_background=False,
                      loader=lambda _: LoadedModel(Constant(), "constant"))


@pytest.fixture(scope="module")
def client():
    listed = ",".join(digest(key) for key in KEYS)
    with TestClient(app_with(api_keys_sha256=listed, rate_limit_per_s=0.01,
                             rate_limit_burst=3)) as client:
        yield client


def predict(client: TestClient, portrait: np.ndarray, key: str | None = None):
    headers = {"X-API-Key": key} if key is not None else {}
    return client.post("/predict", headers=headers,
                       files={"image": ("p.png", to_png(portrait), "image/png")})


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_without_a_key_the_answer_is_401_with_a_reason(client, portraits):
    response = predict(client, portraits[0])
    assert response.status_code == 401 and error_code(response) == "missing_api_key"
    assert "X-API-Key" in response.json()["error"]["message"]
    assert "X-API-Key" in response.headers["www-authenticate"]


def test_a_wrong_key_is_403_and_a_right_one_passes(client, portraits):
    response = predict(client, portraits[0], "nosferatu")
    assert response.status_code == 403 and error_code(response) == "invalid_api_key"
    assert predict(client, portraits[0], KEYS[1]).status_code == 200


def test_probes_and_metrics_stay_open(client):
    for path in ("/health", "/ready", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_the_schema_documents_the_key(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["api_key"]["name"] == "X-API-Key"
    assert {"401", "403", "429"} <= set(schema["paths"]["/predict"]["post"]["responses"])


def test_each_key_has_its_own_bucket_and_429_says_when_to_retry(client, portraits):
    answers = [predict(client, portraits[1], KEYS[0]).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    limited = predict(client, portraits[1], KEYS[0])
    assert error_code(limited) == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert predict(client, portraits[1], KEYS[1]).status_code == 200  # another caller


def test_a_strangers_body_is_never_read(client):
    """Refused on its headers: the multipart body is not parsed, nor even received."""
    received = []

    async def receive():
        received.append(True)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("testserver", 80), "state": {},
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"),
                         (b"content-length", b"1000")]}
    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 401 and not received


def test_keys_are_compared_in_constant_time_against_every_digest(monkeypatch):
    calls = []

    def counting(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ApiKeys(digest(key) for key in ["a", "b", "c"])
    assert keys.identify("a")  # the first digest matches, and the other two are still compared
    assert len(calls) == 3


def test_keys_load_from_a_file_and_bad_digests_fail_at_startup(tmp_path, portraits):
    secret = tmp_path / "api-keys"
    secret.write_text(f"# one digest per line\n{digest(KEYS[0])}\n")
    with TestClient(app_with(api_keys_file=secret)) as client:
        assert predict(client, portraits[2]).status_code == 401
        assert predict(client, portraits[2], KEYS[0]).status_code == 200
    with pytest.raises(ValueError, match="64 hex"):
        parse_digests("renfield-0001")  # a key where its digest belongs
    with pytest.raises(ValueError, match="is not a file"):
        ServiceSettings(api_keys_file=tmp_path / "missing")


def test_no_keys_means_open_and_docs_can_be_switched_off(portraits):
    with TestClient(app_with(docs=False)) as client:
        assert predict(client, portraits[3]).status_code == 200
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path


def test_the_bucket_refills_at_its_rate_and_forgets_old_callers():
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=2, max_callers=2, clock=lambda: now[0])
    buckets.take("a"), buckets.take("a")
    with pytest.raises(ServiceError) as caught:
        buckets.take("a")
    assert caught.value.status == 429 and caught.value.retry_after == 1
    now[0] = 0.5  # one token back
    buckets.take("a")
    buckets.take("b"), buckets.take("c")  # "a" is the least recently used: forgotten
    assert list(buckets._buckets) == ["b", "c"]
