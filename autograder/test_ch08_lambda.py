"""Chapter 8 — AWS Lambda.

The handler is graded as Lambda would run it: it is made once, then invoked with API Gateway
events (REST API v1 and HTTP API v2, base64-encoded multipart bodies) built here, which you
have not seen. No AWS account is involved.

Sealed: your code runs in a sandboxed process. The probe ``autograder/probes/ch08.py`` makes
your handler there, around the course's app, and passes it each event; the responses come back
here as plain data and are checked against the grader's own detector.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vampire_detector.images import to_png
from vampire_detector.onnx_export import export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import make_portraits
from vampire_detector.shipping.gateway import gateway_event, multipart


def answer(handler: Callable, event: dict, collect: bool = False) -> tuple[int, Any]:
    """The status and the decoded JSON body of the handler's response to ``event``."""
    response = handler(event, collect)
    assert isinstance(response, dict) and "statusCode" in response, \
        "a Lambda handler behind API Gateway returns a dict with a statusCode"
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body) if body else None


@pytest.fixture(scope="module")
def ch08(submission):
    return submission("ch08_lambda")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch08", "ch08_lambda")


@pytest.fixture(scope="module")
def onnx_model(sandbox) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="lambda-", dir=sandbox.exchange))
    return export_trained("vampirenet", folder / "vampirenet.onnx")


@pytest.fixture(scope="module")
def loads(handler, probe) -> Callable[[], int]:
    """How many times the app's loader (which counts its calls) has loaded the model."""
    return probe.loads


@pytest.fixture(scope="module")
def handler(probe, onnx_model):
    """The student's handler around the real app, made once in the sandbox."""
    probe.make(str(onnx_model))
    yield lambda event, collect=False: probe.invoke(event, collect)
    probe.close()


@pytest.fixture(scope="module")
def travellers(onnx_model) -> tuple[np.ndarray, list[str]]:
    images = make_portraits(6, seed=8088)[0]
    return images, [p.label for p in OrtDetector(onnx_model, threads=1).predict(images)]


# Exercise 8.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("8.1")
@pytest.mark.points(2)
def test_http_api_v2_predictions(handler, travellers):
    """8.1 HTTP API (v2) events with base64 portraits get the detector's verdicts"""
    images, labels = travellers
    for image, label in zip(images[:3], labels[:3], strict=True):
        status, body = answer(handler, gateway_event(2, "POST", "/predict",
                                                     multipart(to_png(image))))
        assert status == 200, f"POST /predict through a v2 event answered {status}: {body}"
        assert body["label"] == label, "the handler's verdict differs from the detector's"


@pytest.mark.exercise("8.1")
@pytest.mark.points(2)
def test_rest_api_v1_events(handler, travellers):
    """8.1 REST API (v1) events reach the same app: the probes and a prediction"""
    images, labels = travellers
    for path in ("/health", "/ready"):
        status, body = answer(handler, gateway_event(1, "GET", path))
        assert status == 200, f"GET {path} through a v1 event answered {status}: {body}"
    status, body = answer(handler, gateway_event(1, "POST", "/predict",
                                                 multipart(to_png(images[4]))))
    assert status == 200 and body["label"] == labels[4], \
        f"POST /predict through a v1 event answered {status}: {body}"


@pytest.mark.exercise("8.1")
@pytest.mark.points(2)
def test_model_is_loaded_once_and_stays_loaded(handler, travellers, loads):
    """8.1 The model loads once, when the handler is made, and survives between invocations"""
    images, _ = travellers
    assert loads() == 1, "the model should be loaded exactly once, when the handler is made"
    for image in images:
        # Lambda freezes an instance between events; nothing may depend on luck
        status, body = answer(handler, gateway_event(2, "POST", "/predict",
                                                     multipart(to_png(image))), collect=True)
        assert status == 200, f"a later invocation answered {status}: {body}"
    assert loads() == 1, f"the model was loaded {loads()} times for {len(images)} events"


@pytest.mark.exercise("8.1")
@pytest.mark.points(1)
def test_a_letter_is_not_a_portrait(handler):
    """8.1 An upload that is not an image gets a 4xx with a reason, never a 500"""
    letter = multipart(b"My dear Mina, the Count has left the castle.", filename="letter.png")
    status, body = answer(handler, gateway_event(2, "POST", "/predict", letter))
    assert 400 <= status < 500, f"a letter instead of a portrait answered {status}"
    assert body and "error" in body, "the service explains its refusals in an error body"


# Exercise 8.2 ------------------------------------------------------------------------------

def reference_break_even(container: float, ms: float, mb: int, gb_s: float, million: float):
    per_request = math.ceil(ms) / 1000 * (mb / 1024) * gb_s + million / 1e6
    return container / per_request


@pytest.mark.exercise("8.2")
@pytest.mark.points(2)
def test_break_even_requests(ch08):
    """8.2 break_even_requests compares a month of a container with Lambda's price per request"""
    cases = [(61.0, 23.0, 2048, 0.0000166667, 0.20), (18.5, 140.0, 1024, 0.0000133334, 0.20),
             (300.0, 5.0, 3008, 0.0000166667, 0.40)]
    for container, ms, mb, gb_s, million in cases:
        got = ch08.break_even_requests(container, ms, mb, price_per_gb_second=gb_s,
                                       price_per_million=million)
        assert math.isclose(got, reference_break_even(container, ms, mb, gb_s, million),
                            rel_tol=1e-6), \
            f"wrong break-even for a {container} USD/month container, {ms} ms at {mb} MB"


@pytest.mark.exercise("8.2")
@pytest.mark.points(1)
def test_break_even_bills_whole_milliseconds(ch08):
    """8.2 Lambda bills every started millisecond: 12.2 ms costs what 13 ms costs"""
    rounded = ch08.break_even_requests(40.0, 13.0, 1769)
    assert math.isclose(ch08.break_even_requests(40.0, 12.2, 1769), rounded, rel_tol=1e-9), \
        "round each request's duration up to a whole millisecond before pricing it"
    assert ch08.break_even_requests(40.0, 12.0, 1769) > rounded, \
        "a shorter billed duration must make Lambda cheaper, so break even later"
