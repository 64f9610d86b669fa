"""The one exception every refusal raises: an HTTP status, a stable code and a reason.

Introduced in Chapter 6.

It knows no web framework, so the code that turns untrusted bytes into portraits
(``uploads``) serves other hosts too: Azure's inference server runs the scoring script of
Chapter 14 with it, in an environment without FastAPI. ``errors`` turns it into the
service's one error body.
"""

from __future__ import annotations


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The service's one error body: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


class ServiceError(Exception):
    """A refusal with an HTTP status, a stable machine-readable code and a human message.

    A 503 or 429 also tells the client when to retry (``retry_after``, in whole seconds); a
    401 says how to authenticate (``headers``: ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after, self.headers = retry_after, dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        return error_body(self.code, self.message)
