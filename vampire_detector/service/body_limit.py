"""A cap on request bodies, enforced while the bytes arrive and answered with the one error body.

Introduced in Chapter 6.

Without a cap, one client can stream gigabytes into the service's memory or disk before any
endpoint code runs. This ASGI middleware refuses a body whose declared ``Content-Length`` is over
the limit before reading it, and stops a body without one (chunked) as soon as it crosses the
limit. (Starlette's own ``RequestBodyLimitMiddleware`` answers in plain text, which would break
the service's promise of one JSON error shape.)
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vampire_detector.service.errors import error_response


def too_large(limit: int) -> HTTPException:
    # An HTTPException, because FastAPI turns any other error raised while it parses a form
    # into a 400; the service's handler gives it the one error body.
    return HTTPException(413, f"the request body may be at most {limit:,} bytes")


class BodyLimit:
    """Limit the request body per path (``limits``), and to ``default`` bytes elsewhere."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int], default: int = 65_536):
        self.app, self.limits, self.default = app, dict(limits), default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(413, "too_large", too_large(limit).detail)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
            return message

        await self.app(scope, limited_receive, send)
