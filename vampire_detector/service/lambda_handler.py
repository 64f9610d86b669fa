"""The service on AWS Lambda: the Chapter 6 app, unchanged, behind the Mangum adapter.

    handler = vampire_detector.service.lambda_handler.handler   # the function Lambda calls

Lambda calls ``handler(event, context)`` once per request, with the HTTP request wrapped in an
API Gateway event (REST API "v1" or HTTP API "v2"). Mangum turns the event into an ASGI request
for the FastAPI app and the app's response into the dictionary API Gateway expects.

One thing needs care. Asked to run the app's lifespan (``lifespan="auto"``, its default),
Mangum runs startup *and shutdown* around every single invocation: the model would be loaded
and warmed for every traveller. So the startup runs once here, when Lambda imports this module
(its "init phase", the cold start), on the event loop that Mangum then reuses for every
invocation; Mangum itself is told ``lifespan="off"``. A warm instance only computes. For the
same reason the access log's lines are written by the request itself, not by a thread that a
frozen instance would stop mid-queue: CloudWatch gets each line with its invocation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from vampire_detector.service.app import create_app


def start_lifespan(app: FastAPI) -> asyncio.AbstractEventLoop:
    """Run the app's startup (model load and warm-up) once, on a loop that stays current.

    The loop is never closed: the micro-batcher's task lives on it between invocations, and
    Mangum picks it up with ``asyncio.get_event_loop()``. Shutdown never runs: Lambda freezes
    and eventually discards the whole instance.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    # Keep a reference: a lifespan that is garbage-collected runs its shutdown, which would stop
    # the micro-batcher under the next request.
    app.state.lambda_lifespan = lifespan
    return loop


def make_handler(app: FastAPI) -> Mangum:
    """A Lambda handler serving ``app``, whose model is loaded now and never again."""
    start_lifespan(app)
    return Mangum(app, lifespan="off")


def __getattr__(name: str) -> Any:
    """``handler`` is built on first access, so that importing this module stays cheap.

    Lambda resolves ``vampire_detector.service.lambda_handler.handler`` during its init phase,
    so the model still loads at cold start, before the first event, as it should.
    """
    if name == "handler":
        globals()["handler"] = built = make_handler(create_app(load_in_background=False,
                                                                log_in_thread=False))
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
