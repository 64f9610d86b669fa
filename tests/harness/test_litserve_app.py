"""LitServe started for real: it answers a portrait like the others, refuses bytes that are not
one with a 4xx, and leaves no process behind. One server is started for the whole module (its
inference worker loads the model in a spawned process: a few seconds on a busy machine)."""

from __future__ import annotations

import httpx2 as httpx
import numpy as np
import pytest

from vampire_detector.harness.launch import group_members
from vampire_detector.harness.litserve_app import LitServeConfig, running_litserve
from vampire_detector.images import encode, to_png
from vampire_detector.portraits import make_portraits
from vampire_detector.torchserve_handler import load_probabilities
from vampire_detector.weights import weights_path


@pytest.fixture(scope="module")
def litserve():
    with running_litserve(weights_path("vampirenet"),
                          LitServeConfig(max_batch_size=4, batch_timeout_ms=5)) as server:
        yield server
    assert server.process.poll() is not None, "LitServe still runs after the context closed"
    assert not group_members(server.process.pid), "LitServe's workers outlived it"


def post(server, content: bytes, content_type: str = "image/png") -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as client:
        return client.post(server.path, files={"image": ("upload", content, content_type)})


def test_it_answers_a_portrait_with_the_models_label_and_probability(litserve):
    image = make_portraits(1, seed=9)[0][0]
    answer = post(litserve, to_png(image))
    assert answer.status_code == 200, answer.text
    expected = load_probabilities(weights_path("vampirenet"))(image[None])[0]
    body = answer.json()
    assert body["label"] == ("human", "vampire")[int(expected.argmax())]
    np.testing.assert_allclose(body["probability"], expected.max(), atol=1e-5)


@pytest.mark.parametrize(("content", "content_type", "status"), [
    (b"a smudged portrait, not an image", "text/plain", 422),
    (b"", "image/png", 400),
    (encode(make_portraits(1, seed=2)[0][0], "GIF"), "image/gif", 415),
])
def test_what_is_not_a_portrait_gets_a_4xx_not_a_500(litserve, content, content_type, status):
    answer = post(litserve, content, content_type)
    assert answer.status_code == status, answer.text


def test_a_request_without_the_image_field_is_a_client_error(litserve):
    with httpx.Client(base_url=litserve.url, timeout=30.0, trust_env=False) as client:
        assert client.post(litserve.path, json={"instances": []}).status_code == 400
        assert client.post(litserve.path, files={"other": ("x", b"x")}).status_code == 400


def test_a_config_that_measures_nothing_is_refused():
    with pytest.raises(ValueError, match="max_batch_size"):
        LitServeConfig(max_batch_size=0)
    with pytest.raises(ValueError, match="batch_timeout_ms"):
        LitServeConfig(batch_timeout_ms=-1)
