"""Chapter 8's probes, run beside the submission.

Exercise 8.1: the submission's Lambda handler around the course's app, made once here and
invoked with the events the grader builds; the responses go back as they are, with the number
of model loads and of requests that reached the app.

Exercise 8.3: the submission's batch handler, given a fake S3 client that holds the objects the
grader chose and records every call, and the course's ONNX detector; the calls, the objects
written and the handler's report go back as plain data.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
from pathlib import Path
from typing import Any

from vampire_detector.images import from_png
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.service.app import create_app
from vampire_detector.service.runtimes import LoadedModel, load_predictor
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.shipping.gateway import close_loop

_MADE: dict[str, Any] = {"loads": 0, "requests": 0}


def make(model_path: str) -> int:
    """Make the handler once, around the app serving the ONNX file ``model_path`` with a loader
    that counts its calls and a middleware that counts the requests reaching the app; return
    how many times the model has been loaded."""
    def counting_loader(settings: ServiceSettings) -> LoadedModel:
        _MADE["loads"] += 1
        return load_predictor(settings)

    settings = ServiceSettings(runtime="onnx", model_path=Path(model_path), warmup_batches=1,
                               max_wait_ms=0)
    app = create_app(settings, loader=counting_loader, load_in_background=False)

    @app.middleware("http")
    async def count_requests(request, call_next):
        _MADE["requests"] += 1
        return await call_next(request)

    ch08 = importlib.import_module("ch08_lambda")
    _MADE["handler"] = ch08.make_handler(app)
    return loads()


def invoke(event: dict, collect: bool = False) -> object:
    """The handler's response to ``event`` (after a garbage collection when ``collect``: Lambda
    freezes an instance between events, and nothing may depend on luck)."""
    if collect:
        gc.collect()
    return _MADE["handler"](event, None)


def loads() -> int:
    return int(_MADE["loads"])


def requests() -> int:
    """How many HTTP requests have reached the app so far."""
    return int(_MADE["requests"])


def close() -> None:
    loop = asyncio.get_event_loop_policy().get_event_loop()
    if not loop.is_closed():
        close_loop(loop)


# Exercise 8.3 --------------------------------------------------------------------------------

class NoSuchKey(Exception):
    """What boto3 raises (as ``client.exceptions.NoSuchKey``) for a key the bucket lacks."""


class AccessDenied(Exception):
    """What boto3 raises (a ``ClientError``) for an object the function may not read."""


class StreamingBody:
    """Like botocore's: its bytes can be read once."""

    def __init__(self, data: bytes):
        self._data = data

    def read(self, amount: int | None = None) -> bytes:
        data, self._data = (self._data, b"") if amount is None else (
            self._data[:amount], self._data[amount:])
        return data


class FakeS3:
    """The part of a boto3 S3 client the batch handler uses, recording every call."""

    class exceptions:
        NoSuchKey = NoSuchKey
        AccessDenied = AccessDenied

    def __init__(self, objects: list[list], locked: list[list]):
        self.objects = {(bucket, key): bytes(data) for bucket, key, data in objects}
        self.locked = {(bucket, key) for bucket, key in locked}
        self.calls: list[list[str]] = []
        self.written: list[dict] = []

    def get_object(self, *, Bucket: str, Key: str, **extra: Any) -> dict:
        self.calls.append(["get_object", Bucket, Key])
        if (Bucket, Key) in self.locked:
            raise AccessDenied("An error occurred (AccessDenied) when calling the GetObject "
                               "operation: Access Denied")
        if (Bucket, Key) not in self.objects:
            raise NoSuchKey("An error occurred (NoSuchKey) when calling the GetObject "
                            "operation: The specified key does not exist.")
        data = self.objects[Bucket, Key]
        return {"Body": StreamingBody(data), "ContentLength": len(data),
                "ContentType": "image/png"}

    def put_object(self, *, Bucket: str, Key: str, Body: Any = b"",
                   **extra: Any) -> dict:
        self.calls.append(["put_object", Bucket, Key])
        data = Body.encode() if isinstance(Body, str) else (
            Body.read() if hasattr(Body, "read") else bytes(Body))
        self.objects[Bucket, Key] = data
        self.written.append({"bucket": Bucket, "key": Key, "body": data,
                             "content_type": extra.get("ContentType")})
        return {"ETag": '"grader"'}

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the grader's S3 client offers get_object and put_object, not "
                             f"{name}")


def batch(events: list[dict], objects: list[list], model_path: str, options: dict,
          locked: list[list] = ()) -> dict:
    """Make the submission's batch handler once, with a fake S3 holding ``objects`` (triples
    bucket, key, bytes) and the ONNX detector, and invoke it with each event in turn.

    Returns, as plain data: each invocation's report (or the exception it raised), every call
    to the client, every object written and how many portraits the detector was given.
    """
    s3 = FakeS3(objects, list(locked))
    detector = OrtDetector(model_path, threads=1)
    scored = []

    def detect(data: bytes) -> dict:
        scored.append(len(data))
        try:
            image = from_png(bytes(data))
        except Exception as error:
            raise ValueError(f"not an image: {type(error).__name__}") from None
        prediction = detector.predict(image[None])[0]
        return {"label": prediction.label, "probability": round(prediction.probability, 6)}

    ch08 = importlib.import_module("ch08_lambda")
    handler = ch08.make_batch_handler(s3, detect, **options)
    reports = []
    for event in events:
        try:
            reports.append({"report": _plain(handler(event, None))})
        except Exception as error:
            reports.append({"raised": f"{type(error).__name__}: {error}"})
    return {"reports": reports, "calls": s3.calls, "written": s3.written,
            "detected": len(scored)}


def _plain(value: object) -> object:
    """The report as JSON would carry it: what the handler returns must be serialisable."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        return {"not JSON": f"{type(error).__name__}: {error}"}
