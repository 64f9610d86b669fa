"""Chapter 8 exercises: AWS Lambda.

Fill in the function bodies below, then grade them with

    pytest autograder/test_ch08_lambda.py
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# AWS Lambda's on-demand prices for x86 functions in us-east-1 (first pricing tier), in USD.
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_MILLION_REQUESTS = 0.20


def make_handler(app: FastAPI) -> Handler:
    """Exercise 8.1: a Lambda handler that serves API Gateway events with ``app``.

    ``handler(event, context)`` must answer REST API (v1) and HTTP API (v2) events with the
    dictionary API Gateway expects. The app's model must be loaded exactly once, here, when the
    handler is made (Lambda's init phase), and stay loaded for every later invocation.
    """
    # BEGIN SOLUTION
    # Hint: Mangum's default lifespan="auto" runs the app's startup *and shutdown* around every
    # Hint: invocation. Start the lifespan yourself, once, on the loop Mangum will use later.
    # Hint: app.router.lifespan_context(app) is an async context manager; keep it referenced.
    stack = contextlib.AsyncExitStack()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Mangum runs every request on asyncio.get_event_loop()
    loop.run_until_complete(stack.enter_async_context(app.router.lifespan_context(app)))
    app.state.lambda_exit_stack = stack  # collected, it would shut the batcher down
    return Mangum(app, lifespan="off")
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
