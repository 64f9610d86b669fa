"""One error body for every failure: ``{"error": {"code": ..., "message": ...}}``.

Introduced in Chapter 6.

A client at the border should never have to parse three different error shapes, and a bad
request must never surface as a 500. Every refusal in the service raises ``ServiceError`` (from
``refusal``, or one of FastAPI's own exceptions), and the handlers below turn all of them into
the same JSON body.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

# Raised everywhere and answered here; it lives in ``refusal`` so that ``uploads`` needs no
# FastAPI. The ``as`` says that this module passes it on.
from vampire_detector.service.refusal import ServiceError as ServiceError
from vampire_detector.service.refusal import error_body

log = logging.getLogger("vampire_detector.service")

# Codes for the HTTP errors that FastAPI or Starlette raise before our code runs.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 408: "request_timeout", 413: "too_large",
              415: "unsupported_media_type", 429: "too_many_requests", 503: "unavailable"}
RETRY_AFTER_S = 1  # when to come back after a 503 (busy, loading, shutting down)
REQUEST_ID = "vampire.request_id"  # the scope key where request_log.RequestLog puts the id
REQUEST_ID_HEADER = "X-Request-ID"


def error_response(status: int, code: str, message: str, retry_after: int | None = None,
                   request_id: str | None = None) -> JSONResponse:
    """The one error body; every 503 and 429 carries ``Retry-After``.

    With ``request_id`` (Chapter 10), the body and the ``X-Request-ID`` header carry it, so that
    a client who reports a refusal can quote the id that finds its log line.
    """
    body: dict[str, object] = error_body(code, message)
    if request_id is not None:
        body["request_id"] = request_id
    response = JSONResponse(body, status_code=status)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    if retry_after is None and status in (429, 503):
        retry_after = RETRY_AFTER_S
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
    response = error_response(error.status, error.code, error.message, error.retry_after,
                              request.scope.get(REQUEST_ID))
    response.headers.update(error.headers)
    return response


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(error.status_code, "http_error")
    response = error_response(error.status_code, code, str(error.detail),
                              request_id=request.scope.get(REQUEST_ID))
    response.headers.update(error.headers or {})  # e.g. WWW-Authenticate
    return response


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    return error_response(422, "invalid_request", message,
                          request_id=request.scope.get(REQUEST_ID))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    request_id = request.scope.get(REQUEST_ID)
    log.error("unexpected error (request %s)", request_id, exc_info=error)
    return error_response(500, "internal", "the detector failed; the failure has been logged",
                          request_id=request_id)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception the app can raise to the one error body."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
