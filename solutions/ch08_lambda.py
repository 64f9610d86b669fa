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
    # BEGIN SOLUTION
    # Hint: Mangum's default lifespan="auto" runs the app's startup *and shutdown* around every
    # Hint: invocation. Start the lifespan yourself, once, on the loop Mangum will use later.
    # Hint: app.router.lifespan_context(app) is an async context manager; keep it referenced.
    # Hint: Mangum cannot read a ping (it is no HTTP request): look at the event first.
    stack = contextlib.AsyncExitStack()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Mangum runs every request on asyncio.get_event_loop()
    loop.run_until_complete(stack.enter_async_context(app.router.lifespan_context(app)))
    app.state.lambda_exit_stack = stack  # collected, it would shut the batcher down
    serve = Mangum(app, lifespan="off")
    invocations = 0

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal invocations
        invocations += 1
        if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
            return {"warm": True}
        response = serve(event, context)
        response.setdefault("headers", {})["x-cold-start"] = str(invocations == 1).lower()
        return response

    return handler
    # END SOLUTION


def break_even_requests(container_per_month: float, duration_ms: float, memory_mb: int, *,
                        price_per_gb_second: float = PRICE_PER_GB_SECOND,
                        price_per_million: float = PRICE_PER_MILLION_REQUESTS) -> float:
    """Exercise 8.2: requests per month at which Lambda costs as much as an always-on container.

    Lambda bills each request a fixed price (``price_per_million`` per million) plus its
    duration, rounded up to the next whole millisecond, times its memory in GB (1 GB = 1024 MB),
    at ``price_per_gb_second``. Below the returned number of requests Lambda is cheaper; above
    it, the container that costs ``container_per_month`` is. Ignore the free tier.
    """
    # BEGIN SOLUTION
    gb_seconds = math.ceil(duration_ms) / 1000 * memory_mb / 1024
    per_request = gb_seconds * price_per_gb_second + price_per_million / 1_000_000
    return container_per_month / per_request
    # END SOLUTION


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
    # BEGIN SOLUTION
    # Hint: urllib.parse has the decoder for keys where "+" stands for a space.
    # Hint: S3 delivers an event at least once, and Lambda retries a failed invocation:
    # Hint: one bad portrait must not fail (and so repeat) the whole batch.
    from urllib.parse import unquote_plus

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        report: dict[str, Any] = {"scored": [], "skipped": [], "failed": {}}
        for record in event.get("Records", []):
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
            if key.startswith(results_prefix):
                report["skipped"].append(key)
                continue
            if record["s3"]["object"].get("size", 0) > max_bytes:
                report["failed"][key] = f"larger than {max_bytes} bytes"
                continue
            try:
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                verdict = detect(data)
            except Exception as error:  # one unreadable portrait, not a failed batch
                report["failed"][key] = f"{type(error).__name__}: {error}"
                continue
            s3.put_object(Bucket=bucket, Key=f"{results_prefix}{key}.json",
                          Body=json.dumps({"key": key, **verdict}).encode(),
                          ContentType="application/json")
            report["scored"].append(key)
        return report

    return handler
    # END SOLUTION
