"""One log line per request, and the request id that joins it to everything else.

Introduced in Chapter 10.

Metrics count travellers; a log says what happened to *one* of them. Every request gets an id
(the caller's ``X-Request-ID`` when it is well formed, a fresh one otherwise), which comes back
in the response's ``X-Request-ID`` header, in every error body, as the exemplar of the request's
duration histogram, and in one JSON line written when the response is finished::

    {"ts": "...", "event": "request", "request_id": "9f3c...", "method": "POST",
     "route": "/predict", "status": 200, "latency_ms": 4.1, "model_version": "...",
     "label": "vampire", "probability": 0.98}

The line holds what an operator needs and nothing a stranger should read: never the portrait,
never an API key, never the raw headers. The route is the template, as in the metrics.

Lines go to the ``vampire_detector.access`` logger, to stderr (what ``kubectl logs`` and
CloudWatch read). The request only puts a record on an in-memory queue; a thread formats and
writes it, so a slow log pipe never stalls the event loop (``benchmarks/bench_access_log.py``
measures what the lines cost).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Literal

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vampire_detector.service.errors import REQUEST_ID, REQUEST_ID_HEADER
from vampire_detector.service.metrics import method_label, route_label

ACCESS_LOGGER = "vampire_detector.access"
RECORD = "vampire.access_record"  # the scope key of the request's AccessRecord
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,64}")
ERROR_BODY_BYTES = 4096  # enough of an error body to read its code; a longer one is not ours
LogFormat = Literal["json", "text"]
ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)  # made once, not per line


def request_id_for(headers: Headers) -> str:
    """The caller's ``X-Request-ID`` if it is 1-64 characters of ``[A-Za-z0-9._-]``, else a new
    one: an id that could carry spaces, quotes or newlines would forge log lines."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if WELL_FORMED.fullmatch(given) else uuid.uuid4().hex


@dataclass
class AccessRecord:
    """The fields of one request's line, filled in as the request goes (by the routes too)."""

    request_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    written: bool = False  # the line is out: later news needs a line of its own


def note(scope: Scope, **fields: Any) -> None:
    """Add ``fields`` to the request's log line (a no-op outside ``RequestLog``)."""
    record = scope.get(RECORD)
    if record is not None:
        record.fields.update(fields)


def access_record(scope: Scope) -> AccessRecord | None:
    return scope.get(RECORD)


def log_event(event: str, **fields: Any) -> None:
    """A line of its own on the access log, e.g. a shadow verdict that came after the request's."""
    logging.getLogger(ACCESS_LOGGER).info(event, extra={"access": {"event": event, **fields}})


def timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the access fields, or the level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "access", None)
        if fields is None:
            fields = {"level": record.levelname, "logger": record.name,
                      "message": record.getMessage()}
            if record.exc_info:
                fields["exception"] = self.formatException(record.exc_info)
        return ENCODER.encode({"ts": timestamp(record), **fields})


class TextFormatter(logging.Formatter):
    """``key=value`` pairs for a human at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "access", None)
        if fields is None:
            return f"{timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        pairs = " ".join(f"{key}={json.dumps(value, default=str)}"
                         if not isinstance(value, (int, float)) else f"{key}={value}"
                         for key, value in fields.items())
        return f"{timestamp(record)} {pairs}"


class Handoff(logging.handlers.QueueHandler):
    """A QueueHandler that hands the record over as it is: its fields are plain data that
    nobody changes afterwards, so the copy and the formatting all happen on the writer."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class AccessLog:
    """The access logger's one handler: a queue on the request's side, a writer thread behind.

    ``start`` at the lifespan's start, ``stop`` at its end (which writes what is still queued).
    With ``queued=False`` the request's own thread writes: on AWS Lambda, which freezes the
    process between invocations, a writer thread could hold a line until the next one.
    """

    def __init__(self, log_format: LogFormat = "json", stream: IO[str] | None = None,
                 queued: bool = True):
        self.log_format, self.stream, self.queued = log_format, stream, queued
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self._handler: logging.Handler | None = None
        self._listener: logging.handlers.QueueListener | None = None

    def start(self) -> None:
        writer = logging.StreamHandler(self.stream or sys.stderr)
        writer.setFormatter(JsonFormatter() if self.log_format == "json" else TextFormatter())
        if self.queued:
            lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
            self._listener = logging.handlers.QueueListener(lines, writer)
            self._listener.start()
            self._handler = Handoff(lines)
        else:
            self._handler = writer
        self.logger.addHandler(self._handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False  # the lines are ours to format; never twice via root

    def stop(self) -> None:
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler = None
        if self._listener is not None:
            self._listener.stop()  # writes every record still queued
            self._listener = None


class RequestLog:
    """ASGI middleware: give every request an id, echo it, and log one line when it ends.

    The outermost layer of the app, so that what the other layers refuse (a body too large, a
    stranger without a key) is logged too, and they can all read the id from the scope.
    ``version()`` says which model answers (None while loading); with ``enabled`` false the
    ids are still given and echoed, only the lines are not written.
    """

    def __init__(self, app: ASGIApp, known_paths: set[str],
                 version: Callable[[], str | None], enabled: bool = True):
        self.app, self.known, self.version, self.enabled = app, known_paths, version, enabled
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status, error_body = time.perf_counter(), 500, bytearray()
        request_id = request_id_for(Headers(scope=scope))
        record = AccessRecord(request_id)
        scope[REQUEST_ID], scope[RECORD] = request_id, record

        async def echo_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            elif message["type"] == "http.response.body" and status >= 400:
                room = max(0, ERROR_BODY_BYTES - len(error_body))
                error_body.extend(message.get("body", b"")[:room])
            await send(message)

        try:
            await self.app(scope, receive, echo_id)
        finally:
            if self.enabled:
                self.write(scope, record, status, start, bytes(error_body))

    def write(self, scope: Scope, record: AccessRecord, status: int, start: float,
              error_body: bytes) -> None:
        line: dict[str, Any] = {
            "event": "request", "request_id": record.request_id,
            "method": method_label(scope), "route": route_label(scope, self.known),
            "status": status, "latency_ms": round((time.perf_counter() - start) * 1000, 3),
            "model_version": self.version()}
        if status >= 400:
            line["error"] = error_code(error_body, status)
        line.update(record.fields)
        record.written = True
        self.logger.info("request", extra={"access": line})


def error_code(body: bytes, status: int) -> str:
    """The ``code`` of the service's one error body, or ``http_<status>`` for any other."""
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{status}"
