"""A cap on request bodies, enforced while the bytes arrive and answered with the one error body.

Introduced in Chapter 6.

Without a cap, one client can stream gigabytes into the service's memory or disk before any
endpoint code runs. This ASGI middleware refuses a body whose declared ``Content-Length`` is over
the limit before reading it, and stops a body without one (chunked) as soon as it crosses the
limit. (Starlette's own ``RequestBodyLimitMiddleware`` answers in plain text, which would break
the service's promise of one JSON error shape.)

A client can also hold a connection by sending its body slowly, a few bytes now and then.
uvicorn bounds idle connections between requests, not a body that trickles, so the body must
keep arriving: a pause longer than ``idle_timeout_s`` between two parts ends the request with
a 408. (Headers that trickle are the gateway's to time out; uvicorn's ``--limit-concurrency``
caps how many connections such clients can hold meanwhile.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vampire_detector.service.errors import REQUEST_ID, error_response

# The rest of a refused body is never read, so the connection cannot carry another request:
# closing it at once also frees its place under uvicorn's --limit-concurrency.
CLOSE = {"Connection": "close"}


def too_large(limit: int) -> HTTPException:
    # An HTTPException, because FastAPI turns any other error raised while it parses a form
    # into a 400; the service's handler gives it the one error body.
    return HTTPException(413, f"the request body may be at most {limit:,} bytes", headers=CLOSE)


def stalled(seconds: float) -> HTTPException:
    return HTTPException(408, f"the request body stalled for more than {seconds:g} s",
                         headers=CLOSE)


class BodyLimit:
    """Limit the request body per path (``limits``), and to ``default`` bytes elsewhere.

    With ``idle_timeout_s``, a body whose next part takes longer than that to arrive is
    refused with a 408.
    """

    def __init__(self, app: ASGIApp, limits: Mapping[str, int], default: int = 65_536,
                 idle_timeout_s: float | None = None):
        self.app, self.limits, self.default = app, dict(limits), default
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(413, "too_large", too_large(limit).detail,
                                      request_id=scope.get(REQUEST_ID))
            response.headers.update(CLOSE)
            await response(scope, receive, send)
            return
        received, complete = 0, False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete or self.idle_timeout_s is None:  # after the body: wait freely
                message = await receive()  # (for the disconnect that ends a request)
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.idle_timeout_s)
                except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
                    raise stalled(self.idle_timeout_s) from None
            if message["type"] == "http.request" and not message.get("more_body", False):
                complete = True
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
            return message

        await self.app(scope, limited_receive, send)
