"""Chapter 12's probes: the submission's key ring behind a real FastAPI app, its rate limiter on
a clock the probe turns and under threads, and its upload guard with Pillow's decoders watched.
What they saw (statuses, headers, comparisons, decisions, decoder calls) goes back as plain
data; the grader computes what it should have been.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations below,
and they name a dependency made inside a function, which a string annotation could not find.
"""

import contextlib
import hmac
import importlib
import secrets
import sys
import threading
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from vampire_detector.service.errors import ServiceError


def _ch12():
    return importlib.import_module("ch12_security")


def _plain_error(error: BaseException) -> dict[str, object]:
    if isinstance(error, NotImplementedError):
        raise error
    return {"raised": type(error).__name__, "message": str(error)[:300]}


# Exercise 12.1 ------------------------------------------------------------------------------

@contextlib.contextmanager
def _watched_comparisons() -> Iterator[list[list[object]]]:
    """Record every ``compare_digest`` call, however the submission reached the function."""
    calls: list[list[object]] = []
    original = hmac.compare_digest

    def recorded(a, b):
        calls.append([a if isinstance(a, (str, bytes)) else repr(a),
                      b if isinstance(b, (str, bytes)) else repr(b)])
        return original(a, b)

    module = _ch12()
    places = [(hmac, "compare_digest"), (secrets, "compare_digest")]
    places += [(module, name) for name, value in vars(module).items() if value is original]
    saved = [(owner, name, getattr(owner, name)) for owner, name in places]
    for owner, name in places:
        setattr(owner, name, recorded)
    try:
        yield calls
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def key_ring(clients: list[list[Any]], requests: list[list[Any]]) -> dict[str, object]:
    """A ``KeyRing`` holding ``clients`` ([name, key, scopes]) behind an app whose ``POST
    /predict`` requires the scope "predict" and ``POST /reload`` the scope "admin"; each of
    ``requests`` ([path, key or None]) answered, with the comparisons it made."""
    ring = _ch12().KeyRing()
    for name, key, scopes in clients:
        ring.add(name, key, scopes)
    app = FastAPI()

    @app.post("/predict")
    async def predict(client: Annotated[str, Security(ring.require("predict"))]):
        return {"client": client}

    @app.post("/reload")
    async def reload(client: Annotated[str, Security(ring.require("admin"))]):
        return {"client": client}

    answers = []
    with TestClient(app, raise_server_exceptions=False) as client:
        schema = client.get("/openapi.json").json()
        for path, key in requests:
            headers = {} if key is None else {"X-API-Key": key}
            with _watched_comparisons() as calls:
                response = client.post(path, headers=headers)
            try:
                body = response.json()
            except ValueError:
                body = response.text[:300]
            answers.append({"status": response.status_code, "body": body,
                            "www_authenticate": response.headers.get("www-authenticate"),
                            "comparisons": calls})
    schemes = (schema.get("components") or {}).get("securitySchemes") or {}
    return {"answers": answers, "schemes": list(schemes.values())}


def _strings(value: object, seen: set[int], depth: int = 0) -> Iterator[str | bytes]:
    """Every string and bytes value reachable from ``value``'s attributes and containers."""
    if depth > 6 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, (str, bytes, bytearray)):
        yield bytes(value) if isinstance(value, bytearray) else value
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, seen, depth + 1)
            yield from _strings(item, seen, depth + 1)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item, seen, depth + 1)
        return
    if callable(value) or type(value).__module__ in ("builtins", "fastapi.security.api_key"):
        return
    for item in (getattr(value, "__dict__", None) or {}).values():
        yield from _strings(item, seen, depth + 1)
    for slot in getattr(type(value), "__slots__", ()):
        yield from _strings(getattr(value, slot, None), seen, depth + 1)


def stored(clients: list[list[Any]]) -> list[str | bytes]:
    """Every string and bytes value a ring holding ``clients`` keeps."""
    ring = _ch12().KeyRing()
    for name, key, scopes in clients:
        ring.add(name, key, scopes)
    return list(_strings(ring, set()))


# Exercise 12.2 ------------------------------------------------------------------------------

def _decision(limiter, key: str, cost: int) -> dict[str, object]:
    try:
        made = limiter.take(key, cost)
    except Exception as error:
        return _plain_error(error)
    return {"allowed": made.allowed, "remaining": made.remaining,
            "retry_after_s": made.retry_after_s}


def limiter_script(capacity: int, refill_per_s: float,
                   steps: list[list[Any]]) -> list[dict[str, object]]:
    """A ``RateLimiter`` on a clock set to each step's time: each step ([time, key, cost])'s
    decision."""
    now = [0.0]
    limiter = _ch12().RateLimiter(capacity, refill_per_s, clock=lambda: now[0])
    decisions = []
    for when, key, cost in steps:
        now[0] = float(when)
        decisions.append(_decision(limiter, key, int(cost)))
    return decisions


def _race(capacity: int, threads: int, calls: int) -> int:
    """One fresh ``RateLimiter`` on a stopped clock, ``threads`` threads each taking ``calls``
    tokens of one key at once: how many were allowed in all."""
    limiter = _ch12().RateLimiter(capacity, 0.001, clock=lambda: 100.0)
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        try:
            counts.append(sum(bool(limiter.take("renfield", 1).allowed) for _ in range(calls)))
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(30)
    if errors:
        raise errors[0]
    return sum(counts)


def limiter_threads(capacity: int, threads: int, calls: int, rounds: int) -> list[int]:
    """``_race`` ``rounds`` times, with the interpreter switching threads as often as it can."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        return [_race(capacity, threads, calls) for _ in range(rounds)]
    finally:
        sys.setswitchinterval(previous)


# Exercise 12.3 ------------------------------------------------------------------------------

@contextlib.contextmanager
def _watched_pillow() -> Iterator[dict[str, int]]:
    """Count calls of ``Image.open`` and of the decoders' ``load``."""
    seen = {"open": 0, "load": 0}
    originals = [(Image, "open"), (Image.Image, "load"), (ImageFile.ImageFile, "load")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in originals]

    def counting(kind: str, function):
        def wrapper(*args, **kwargs):
            seen[kind] += 1
            return function(*args, **kwargs)
        return wrapper

    for owner, name, function in saved:
        setattr(owner, name, counting(name, function))
    try:
        yield seen
    finally:
        for owner, name, function in saved:
            setattr(owner, name, function)


def declared(data: bytes) -> dict[str, object]:
    """``declared_size(data)``, and whether Pillow was asked anything meanwhile."""
    with _watched_pillow() as seen:
        try:
            size = _ch12().declared_size(data)
        except Exception as error:
            return {**_plain_error(error), "pillow": dict(seen)}
    if isinstance(size, tuple) and len(size) == 2:
        size = [int(size[0]), int(size[1])] if all(isinstance(n, (int, np.integer))
                                                   for n in size) else repr(size)
    else:
        size = repr(size)[:100]
    return {"size": size, "pillow": dict(seen)}


def guarded(data: bytes, max_pixels: int, side: int = 64) -> dict[str, object]:
    """``read_guarded``'s answer, and how many times Pillow decoded before it answered."""
    with _watched_pillow() as seen:
        try:
            pixels = _ch12().read_guarded(data, max_pixels, side)
        except ServiceError as error:
            return {"refused": True, "status": getattr(error, "status", None),
                    "code": getattr(error, "code", None), "decoded": seen["load"]}
        except Exception as error:
            return {**_plain_error(error), "decoded": seen["load"]}
    if isinstance(pixels, np.ndarray) and pixels.dtype != object:
        return {"pixels": pixels, "decoded": seen["load"]}
    return {"returned": type(pixels).__name__, "decoded": seen["load"]}
