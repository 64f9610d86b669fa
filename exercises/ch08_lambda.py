"""Chapter 8 exercises: AWS Lambda.

Fill in the function bodies below, then grade them with

    pytest autograder/test_ch08_lambda.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Detect = Callable[[bytes], dict[str, Any]]

# AWS Lambda's on-demand prices for x86 functions in us-east-1 (first pricing tier), in USD.
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_MILLION_REQUESTS = 0.20


def make_handler(app: FastAPI) -> Handler:
    """Exercise 8.1: a Lambda handler for ``app`` behind API Gateway, kept warm by pings.

    ``handler(event, context)`` must:

    - answer REST API (v1) and HTTP API (v2) events with the dictionary API Gateway expects,
      the app's own status code and body included;
    - load the app's model exactly once, here, when the handler is made (Lambda's init phase),
      and keep it loaded for every later invocation;
    - answer EventBridge's scheduled warm-up ping (an event whose ``source`` is
      ``"aws.events"`` and whose ``detail-type`` is ``"Scheduled Event"``) with
      ``{"warm": True}``, without passing it to the app: it only keeps the instance warm;
    - add the header ``x-cold-start`` to every API response: ``"true"`` when the invocation is
      the first one this instance serves (its cold start), ``"false"`` for every later one.
    """
    # Hint: Mangum's default lifespan="auto" runs the app's startup *and shutdown* around every
    # Hint: invocation. Start the lifespan yourself, once, on the loop Mangum will use later.
    # Hint: app.router.lifespan_context(app) is an async context manager; keep it referenced.
    # Hint: Mangum cannot read a ping (it is no HTTP request): look at the event first.
    raise NotImplementedError(
        "Exercise 8.1 is not implemented yet: write it in exercises/ch08_lambda.py")


def break_even_requests(container_per_month: float, duration_ms: float, memory_mb: int, *,
                        price_per_gb_second: float = PRICE_PER_GB_SECOND,
                        price_per_million: float = PRICE_PER_MILLION_REQUESTS) -> float:
    """Exercise 8.2: requests per month at which Lambda costs as much as an always-on container.

    Lambda bills each request a fixed price (``price_per_million`` per million) plus its
    duration, rounded up to the next whole millisecond, times its memory in GB (1 GB = 1024 MB),
    at ``price_per_gb_second``. Below the returned number of requests Lambda is cheaper; above
    it, the container that costs ``container_per_month`` is. Ignore the free tier.
    """
    raise NotImplementedError(
        "Exercise 8.2 is not implemented yet: write it in exercises/ch08_lambda.py")


def make_batch_handler(s3: Any, detect: Detect, results_prefix: str = "verdicts/",
                       max_bytes: int = 4_000_000) -> Handler:
    """Exercise 8.3: a Lambda handler that scores the portraits uploaded to an S3 bucket.

    ``handler(event, context)`` receives S3's ``ObjectCreated`` notifications: a list
    ``event["Records"]``, each with ``s3.bucket.name``, ``s3.object.key`` (URL-encoded, with
    ``+`` for a space) and ``s3.object.size`` (bytes). ``s3`` is a client with boto3's
    interface and ``detect(data)`` scores a portrait's bytes (it returns a dict such as
    ``{"label": "vampire", "probability": 0.97}`` and raises ``ValueError`` for bytes that are
    not an image). For each record, with the key decoded:

    - a key under ``results_prefix`` is one of this function's own results (it writes into the
      bucket that triggers it): skip it;
    - an object larger than ``max_bytes`` is reported as failed, without being read;
    - otherwise read it with ``s3.get_object(Bucket=..., Key=...)["Body"].read()``, score it,
      and write ``{"key": key, **verdict}`` as JSON with ``s3.put_object(Bucket=..., Key=...,
      Body=..., ContentType="application/json")`` into the same bucket, under the key
      ``results_prefix + key + ".json"``, so that scoring an object twice writes the same
      result again;
    - an object that cannot be read or scored is reported as failed, and the batch goes on.

    The handler returns ``{"scored": [keys], "skipped": [keys], "failed": {key: reason}}``
    with the decoded keys of the records, in the order they came.
    """
    # Hint: urllib.parse has the decoder for keys where "+" stands for a space.
    # Hint: S3 delivers an event at least once, and Lambda retries a failed invocation:
    # Hint: one bad portrait must not fail (and so repeat) the whole batch.
    raise NotImplementedError(
        "Exercise 8.3 is not implemented yet: write it in exercises/ch08_lambda.py")
