"""Chapter 8 — AWS Lambda.

The handler is graded as Lambda would run it: it is made once, then invoked with API Gateway
events (REST API v1 and HTTP API v2, base64-encoded multipart bodies) built here, which you
have not seen, and with EventBridge's warm-up ping. The batch handler is given S3 notification
events in the shape S3 sends (``autograder/events/s3_put.json``), a fake S3 client that records
every call, and the course's detector. No AWS account is involved.

Sealed: your code runs in a sandboxed process. The probes of ``autograder/probes/ch08.py`` make
your handlers there (around the course's app, or with the fake client) and pass them each
event; the responses, the client's calls and the objects written come back here as plain data
and are checked against the grader's own detector.

Wrong answers these tests catch, each with feedback that names the problem:

- 8.1 ``copies-the-library``: the library's ``make_handler`` imported; it is closed while 8.1
  is graded, and it neither answers pings nor marks cold starts.
- 8.1 ``mangum-default-lifespan``: ``Mangum(app)`` runs startup and shutdown around every
  invocation instead of loading the model once, at the cold start.
- 8.1 ``lifespan-not-kept``: the running lifespan is not referenced; collected, it shuts the
  app down under a later request.
- 8.1 ``ping-reaches-mangum``: the warm-up ping handed to Mangum, which cannot read it.
- 8.1 ``ping-served-by-the-app``: the ping answered by asking the app's /health.
- 8.1 ``status-codes-lost``: the response rebuilt around the body, every status a 200.
- 8.1 ``cold-start-every-time``: ``x-cold-start: true`` on every invocation.
- 8.2 ``mb-milliseconds``: memory in MB times milliseconds priced as GB-seconds.
- 8.2 ``gigabyte-of-1000-mb``: MB turned into GB by dividing by 1000.
- 8.2 ``no-rounding``, ``rounds-to-nearest``: durations billed as measured, or rounded to the
  nearest millisecond instead of up.
- 8.2 ``forgets-the-request-fee``: only the duration priced, not the fee per request.
- 8.3 ``key-not-decoded``, ``key-unquoted-without-plus``: the event's URL-encoded key used as
  it is, or decoded without turning "+" into spaces.
- 8.3 ``scores-its-own-results``: the function's own results scored, which triggers it again.
- 8.3 ``one-bad-portrait-fails-the-batch``: an unreadable object raises out of the handler.
- 8.3 ``catches-only-missing-keys``: only ``NoSuchKey`` caught, not a refusal or a non-image.
- 8.3 ``reads-before-checking-the-size``: an oversized object downloaded, then refused.
- 8.3 ``timestamped-result-keys``: a fresh result key at every delivery, so a repeated event
  leaves duplicates.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import numpy as np
import pytest

from autograder.sandbox import SandboxError
from vampire_detector.images import to_png
from vampire_detector.onnx_export import export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import make_portraits
from vampire_detector.shipping.gateway import gateway_event, multipart

EVENTS = Path(__file__).resolve().parent / "events"


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
def made(probe, onnx_model) -> dict:
    """The student's handler around the real app, made once in the sandbox, and its response
    to the very first invocation of the instance (a probe of its health)."""
    probe.make(str(onnx_model))
    first = probe.invoke(gateway_event(2, "GET", "/health"))
    yield {"invoke": lambda event, collect=False: probe.invoke(event, collect), "first": first}
    probe.close()


@pytest.fixture(scope="module")
def handler(made):
    return made["invoke"]


def header(response: dict, name: str) -> str | None:
    """A response header, whatever its case, from headers or multiValueHeaders."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name:
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return values[-1]
    return None


@cache
def ping() -> dict:
    return json.loads((EVENTS / "eventbridge_ping.json").read_text())


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
    assert 400 <= status < 500, (f"a letter instead of a portrait answered {status}; the app "
                                 "refuses it with a 4xx: pass the app's status code on")
    assert body and "error" in body, "the service explains its refusals in an error body"
    status, _ = answer(handler, gateway_event(1, "GET", "/no-such-door"))
    assert status == 404, \
        f"GET of a path the app does not serve answered {status}: pass the app's status code on"


@pytest.mark.exercise("8.1")
@pytest.mark.points(2)
def test_warm_up_ping_never_reaches_the_app(handler, probe, travellers, loads):
    """8.1 EventBridge's warm-up ping gets {"warm": true} and never reaches the app"""
    before = probe.requests()
    try:
        response = handler(ping())
    except SandboxError:
        raise
    except Exception as error:
        pytest.fail(f"the warm-up ping made your handler raise {type(error).__name__}: {error} "
                    "Answer the ping yourself, before Mangum sees it: it is no HTTP request",
                    pytrace=False)
    assert isinstance(response, dict) and response.get("warm") is True, \
        "answer EventBridge's scheduled warm-up ping with {\"warm\": True}"
    assert probe.requests() == before, \
        "the warm-up ping reached the app: it only keeps the instance warm, it is no request"
    assert loads() == 1, "a warm-up ping must not load the model again"
    images, labels = travellers
    status, body = answer(handler, gateway_event(2, "POST", "/predict",
                                                 multipart(to_png(images[5]))))
    assert status == 200 and body["label"] == labels[5], \
        f"after a warm-up ping, POST /predict answered {status}: {body}"


@pytest.mark.exercise("8.1")
@pytest.mark.points(1)
def test_cold_start_is_marked_once(made, handler):
    """8.1 x-cold-start is "true" on the instance's first invocation only"""
    assert isinstance(made["first"], dict) and made["first"].get("statusCode") == 200, \
        f"the first invocation, GET /health, answered {made['first']}"
    assert header(made["first"], "x-cold-start") == "true", \
        "the instance's first API response should carry the header x-cold-start: true"
    for event in (gateway_event(2, "GET", "/ready"), gateway_event(1, "GET", "/health")):
        response = handler(event)
        assert header(response, "x-cold-start") == "false", \
            "a later invocation is no cold start: its x-cold-start header should be false"


# Exercise 8.2 ------------------------------------------------------------------------------

def reference_break_even(container: float, ms: float, mb: int, gb_s: float, million: float,
                         *, ceil=math.ceil, gigabyte: float = 1024, ms_per_s: float = 1000,
                         fees: bool = True) -> float:
    per_request = ceil(ms) / ms_per_s * (mb / gigabyte) * gb_s + fees * million / 1e6
    return container / per_request


# What a break-even close to a wrong formula's says about it: the grader's diagnosis.
DIAGNOSES = [
    ({"ms_per_s": 1, "gigabyte": 1}, "the duration was priced in MB-milliseconds: Lambda's "
                                     "price is per GB-second"),
    ({"ms_per_s": 1}, "milliseconds were priced as seconds: the price is per GB-second"),
    ({"gigabyte": 1}, "megabytes were priced as gigabytes: the price is per GB-second"),
    ({"gigabyte": 1000}, "a GB of Lambda memory is 1024 MB, not 1000"),
    ({"fees": False}, "the fixed fee per request is missing"),
    ({"ceil": lambda ms: ms}, "Lambda bills whole milliseconds: round each duration up"),
]


@pytest.mark.exercise("8.2")
@pytest.mark.points(2)
def test_break_even_requests(ch08):
    """8.2 break_even_requests compares a month of a container with Lambda's price per request"""
    cases = [(61.0, 23.0, 2048, 0.0000166667, 0.20), (18.5, 140.0, 1024, 0.0000133334, 0.20),
             (300.0, 5.0, 3008, 0.0000166667, 0.40), (75.0, 7.4, 1769, 0.0000166667, 0.20)]
    for container, ms, mb, gb_s, million in cases:
        got = ch08.break_even_requests(container, ms, mb, price_per_gb_second=gb_s,
                                       price_per_million=million)
        if math.isclose(got, reference_break_even(container, ms, mb, gb_s, million),
                        rel_tol=1e-6):
            continue
        for variant, diagnosis in DIAGNOSES:
            wrong = reference_break_even(container, ms, mb, gb_s, million, **variant)
            assert not math.isclose(got, wrong, rel_tol=1e-6), (
                f"wrong break-even for a {container} USD/month container, {ms} ms at {mb} MB: "
                f"{diagnosis}")
        pytest.fail(f"wrong break-even for a {container} USD/month container, {ms} ms at "
                    f"{mb} MB", pytrace=False)


@pytest.mark.exercise("8.2")
@pytest.mark.points(1)
def test_break_even_bills_whole_milliseconds(ch08):
    """8.2 Lambda bills every started millisecond: 12.2 ms costs what 13 ms costs"""
    rounded = ch08.break_even_requests(40.0, 13.0, 1769)
    assert math.isclose(ch08.break_even_requests(40.0, 12.2, 1769), rounded, rel_tol=1e-9), \
        "round each request's duration up to a whole millisecond before pricing it"
    assert ch08.break_even_requests(40.0, 12.0, 1769) > rounded, \
        "a shorter billed duration must make Lambda cheaper, so break even later"


# Exercise 8.3 ------------------------------------------------------------------------------

BUCKET = "castle-dracula-portraits"
RESULTS = "verdicts/"


@cache
def recorded_record() -> dict:
    """One record of the recorded S3 notification, the shape every record here copies."""
    return json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]


def s3_event(*objects: tuple[str, int]) -> dict:
    """An S3 notification for ``(key, size)`` uploads, keys URL-encoded as S3 encodes them."""
    records = []
    for number, (key, size) in enumerate(objects):
        record = json.loads(json.dumps(recorded_record()))
        record["s3"]["bucket"]["name"] = BUCKET
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
        record["s3"]["object"].update(key=quote_plus(key, safe="/"), size=size,
                                      sequencer=f"0065D8F1A3C2B4{number:04X}")
        records.append(record)
    return {"Records": records}


@pytest.fixture(scope="module")
def night(travellers) -> dict:
    """Portraits uploaded on a night at the border, their keys awkward, and the verdicts."""
    images, labels = travellers
    keys = ["uploads/night of 31 October/coach 0001.png", "uploads/Mina's portrait (copy).png",
            "uploads/coach+0003 ü.png"]
    portraits = {key: to_png(image) for key, image in zip(keys, images[:3], strict=True)}
    return {"portraits": portraits, "labels": dict(zip(keys, labels[:3], strict=True))}


def run_batch(probe, onnx_model, events, objects, locked=(), **options) -> dict:
    return probe.batch(events, [[BUCKET, key, data] for key, data in objects.items()],
                       str(onnx_model), options, [[BUCKET, key] for key in locked])


def only_report(run: dict) -> dict:
    (outcome,) = run["reports"]
    assert "raised" not in outcome, \
        f"the handler raised instead of reporting: {outcome['raised']}"
    report = outcome["report"]
    assert isinstance(report, dict) and {"scored", "skipped", "failed"} <= set(report), \
        "the handler returns a dict with scored, skipped and failed"
    return report


@pytest.mark.exercise("8.3")
@pytest.mark.points(2)
def test_batch_scores_each_upload(probe, onnx_model, night):
    """8.3 Each uploaded portrait is read by its decoded key, scored and written back as JSON"""
    portraits = night["portraits"]
    event = s3_event(*((key, len(data)) for key, data in portraits.items()))
    run = run_batch(probe, onnx_model, [event], portraits)
    read = [key for call, bucket, key in run["calls"] if call == "get_object"]
    assert sorted(read) == sorted(portraits), (
        f"the handler read {read}: decode each key of the event (URL-encoded, with + for a "
        "space) before asking S3 for it")
    report = only_report(run)
    assert report["scored"] == list(portraits), \
        f"the report's scored keys are {report['scored']}, not the uploads' decoded keys"
    written = {w["key"]: w for w in run["written"]}
    for key, label in night["labels"].items():
        result = written.get(f"{RESULTS}{key}.json")
        assert result is not None, (f"no result was written for {key!r} where the exercise "
                                    "says, under the results prefix")
        assert result["bucket"] == BUCKET, "write the results into the bucket of the upload"
        assert result["content_type"] == "application/json", "results are application/json"
        document = json.loads(result["body"])
        assert document.get("key") == key, "each result names the portrait it judges"
        assert document.get("label") == label, \
            f"the verdict written for {key!r} is not the detector's"
    assert len(run["written"]) == len(portraits), "one result per portrait, no more"


@pytest.mark.exercise("8.3")
@pytest.mark.points(2)
def test_batch_never_scores_its_own_results(probe, onnx_model, night):
    """8.3 A notification of the function's own result is skipped, and nothing is read or written"""
    key = next(iter(night["portraits"]))
    result = f"{RESULTS}{key}.json"
    document = json.dumps({"key": key, "label": night["labels"][key]}).encode()
    run = run_batch(probe, onnx_model, [s3_event((result, len(document)))], {result: document})
    report = only_report(run)
    assert not run["calls"], (
        f"for the notification of its own result the handler called {run['calls']}: each "
        "result it writes would trigger it again, for ever")
    assert report["skipped"] == [result], "report the skipped result's key under skipped"


@pytest.mark.exercise("8.3")
@pytest.mark.points(2)
def test_batch_reports_unreadable_objects_and_goes_on(probe, onnx_model, night):
    """8.3 Missing, forbidden, oversized and non-image objects are reported; the rest is scored"""
    portraits = dict(night["portraits"])
    first, second, third = portraits
    letter = b"My dear Mina, the Count has left the castle." * 20
    big = np.random.default_rng(7).bytes(150_000)
    objects = {first: portraits[first], "uploads/letter.png": letter,
               "uploads/huge scroll.png": big, "uploads/sealed.png": portraits[second],
               third: portraits[third]}
    uploads = [(first, len(portraits[first])), ("uploads/vanished.png", 4096),
               ("uploads/letter.png", len(letter)), ("uploads/huge scroll.png", len(big)),
               ("uploads/sealed.png", len(portraits[second])), (third, len(portraits[third]))]
    run = run_batch(probe, onnx_model, [s3_event(*uploads)], objects,
                    locked=["uploads/sealed.png"], max_bytes=100_000)
    report = only_report(run)
    failed = report["failed"]
    for key in ("uploads/vanished.png", "uploads/letter.png", "uploads/huge scroll.png",
                "uploads/sealed.png"):
        assert key in failed and isinstance(failed[key], str) and failed[key], \
            f"{key!r} could not be scored: report it in failed, with a reason"
    read = [key for call, _, key in run["calls"] if call == "get_object"]
    assert "uploads/huge scroll.png" not in read, \
        "an object larger than max_bytes must be refused by its size in the event, before reading"
    assert report["scored"] == [first, third], \
        "the good portraits around the bad ones must still be scored"
    assert {w["key"] for w in run["written"]} == {f"{RESULTS}{first}.json",
                                                  f"{RESULTS}{third}.json"}, \
        "write results for the scored portraits only"


@pytest.mark.exercise("8.3")
@pytest.mark.points(1)
def test_batch_delivered_twice_writes_the_same_results(probe, onnx_model, night):
    """8.3 S3 may deliver an event twice: the second run rewrites the same results"""
    portraits = night["portraits"]
    event = s3_event(*((key, len(data)) for key, data in portraits.items()))
    run = run_batch(probe, onnx_model, [event, event], portraits)
    assert all("raised" not in outcome for outcome in run["reports"]), \
        "the handler raised on a repeated delivery"
    half = len(run["written"]) // 2
    first, second = run["written"][:half], run["written"][half:]
    assert [w["key"] for w in first] == [w["key"] for w in second], (
        "a repeated event wrote results under new keys: derive each result's key from the "
        "portrait's key alone, so that a second delivery overwrites the first")
    assert [w["body"] for w in first] == [w["body"] for w in second], \
        "a repeated event wrote different results for the same portraits"
