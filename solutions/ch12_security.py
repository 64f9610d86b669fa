"""Chapter 12 exercises: locking the gate.

Fill in the classes and functions below, then grade them with

    pytest autograder/test_ch12_security.py

Exercise 12.4 is a file of its own: ch12_security/night-watch-policy.yaml.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader
from PIL import Image

from vampire_detector.service.errors import ServiceError

HEADER = "X-API-Key"
# Reads the header for a security dependency and documents it in the OpenAPI schema. Missing
# header: None (auto_error=False), so that your dependency answers the 401 itself.
API_KEY_HEADER = APIKeyHeader(name=HEADER, auto_error=False, scheme_name="api_key")


# Exercise 12.1 ------------------------------------------------------------------------------

class KeyRing:
    """Exercise 12.1: the API keys that may call the detector, each with a client and scopes.

    ``add(client, key, scopes)`` remembers a key by its SHA-256 hex digest only: nothing in the
    ring may hold the key itself. ``require(scope)`` returns a FastAPI security dependency (use
    ``fastapi.security.APIKeyHeader`` on the ``X-API-Key`` header, so that the OpenAPI schema
    documents it: ``API_KEY_HEADER`` above) that returns the caller's client name, or raises
    ``HTTPException``:

    - 401 when the header is missing or empty, or when the key is not one of the ring's, with
      a ``WWW-Authenticate`` header naming the API-key scheme and the header, and a ``detail``
      that says which of the two happened (a missing key's detail names the header);
    - 403 when the key is valid but its client lacks ``scope``.

    Hash the presented key, then compare its digest with *every* stored digest using
    ``hmac.compare_digest``, without stopping at a match.
    """

    def __init__(self) -> None:
        # BEGIN SOLUTION
        self._entries: list[tuple[bytes, str, frozenset[str]]] = []  # (digest, client, scopes)
        # END SOLUTION

    def add(self, client: str, key: str, scopes: Iterable[str] = ("predict",)) -> None:
        # BEGIN SOLUTION
        self._entries.append((hashlib.sha256(key.encode()).digest(), client, frozenset(scopes)))
        # END SOLUTION

    def identify(self, presented: str) -> tuple[str, frozenset[str]] | None:
        """The client and scopes of a presented key, or None when it is not one of the ring's."""
        # BEGIN SOLUTION
        # Hint: any(...) stops at the first True: a loop over every digest does not.
        candidate = hashlib.sha256(presented.encode()).digest()
        found = None
        for stored, client, scopes in self._entries:
            if hmac.compare_digest(candidate, stored) and found is None:
                found = (client, scopes)
        return found
        # END SOLUTION

    def require(self, scope: str) -> Callable:
        """A security dependency: the caller's client name, if its key has ``scope``."""
        # BEGIN SOLUTION
        # Hint: this file's annotations are strings (``from __future__ import annotations``),
        # evaluated in the module's globals: Annotated[str | None, Security(API_KEY_HEADER)]
        # works in the dependency's signature, a local name there does not.
        challenge = {"WWW-Authenticate": f'APIKey header="{HEADER}"'}

        async def dependency(key: Annotated[str | None, Security(API_KEY_HEADER)]) -> str:
            if not key:
                raise HTTPException(401, f"send your API key in the {HEADER} header",
                                    headers=challenge)
            known = self.identify(key)
            if known is None:
                raise HTTPException(401, "this API key is not valid", headers=challenge)
            client, scopes = known
            if scope not in scopes:
                raise HTTPException(403, f"this API key may not use {scope}")
            return client

        return dependency
        # END SOLUTION


# Exercise 12.2 ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What the rate limiter said to one request."""

    allowed: bool
    remaining: int  # whole tokens left in the caller's bucket after this request
    retry_after_s: int  # 0 when allowed; else whole seconds until the request could pass


class RateLimiter:
    """Exercise 12.2: a token bucket per key, safe to call from many threads at once.

    Each key's bucket holds at most ``capacity`` tokens and starts full the first time the key
    is seen; it refills continuously at ``refill_per_s`` tokens per second, never past
    ``capacity``. ``take(key, cost)`` spends ``cost`` tokens when the bucket holds that many
    (``allowed``); otherwise it spends nothing (a refused request costs no tokens, so the
    bucket never goes negative) and says in ``retry_after_s`` how many seconds, rounded *up*
    to a whole number, until ``cost`` tokens will be there: what a 429's ``Retry-After``
    header carries. ``remaining`` is the whole tokens left (rounded down). Time comes from
    ``clock()``, in seconds. Raise ValueError for a capacity under 1, a refill rate that is
    not positive, or a cost under 1 or over the capacity.
    """

    def __init__(self, capacity: int, refill_per_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # BEGIN SOLUTION
        if capacity < 1 or not refill_per_s > 0:
            raise ValueError("capacity must be at least 1 and refill_per_s positive")
        self.capacity, self.refill_per_s, self.clock = capacity, refill_per_s, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()
        # END SOLUTION

    def take(self, key: str, cost: int = 1) -> Decision:
        # BEGIN SOLUTION
        # Hint: read the clock and update the bucket under one lock, or two threads can both
        # spend the last token.
        if not 1 <= cost <= self.capacity:
            raise ValueError(f"cost must be between 1 and the capacity, {self.capacity}")
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(key, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + max(0.0, now - then) * self.refill_per_s)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, now)
        wait = 0 if allowed else math.ceil((cost - tokens) / self.refill_per_s)
        return Decision(allowed, math.floor(tokens), wait)
        # END SOLUTION


# Exercise 12.3 ------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def declared_size(data: bytes) -> tuple[int, int]:
    """Exercise 12.3: the (width, height) that a PNG or JPEG upload's header declares.

    Read the bytes yourself, without Pillow and without decoding anything. A PNG declares its
    size in its first chunk, IHDR. A JPEG is a series of segments, each a marker (0xFF and a
    code) and, for most, a two-byte big-endian length that counts itself; the size is in the
    first *frame header* (SOF0 to SOF15, codes 0xC0 to 0xCF except 0xC4, 0xC8 and 0xCC, which
    are tables): its precision byte, then the height, then the width. Walk the segments by
    their lengths: bytes inside metadata (EXIF, a thumbnail) are not markers. Raise ValueError
    for anything else: another format, a truncated header, or no frame header before the
    first scan (SOS, 0xDA).
    """
    # BEGIN SOLUTION
    # Hint: struct.unpack(">HH", ...) reads two big-endian unsigned 16-bit numbers.
    # Hint: markers 0xD0-0xD7 (restarts) and 0x01 have no length; 0xFF bytes may pad.
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ValueError("a PNG must start with its IHDR chunk")
        return struct.unpack(">II", data[16:24])
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a PNG or JPEG image")
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError(f"no JPEG marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if position + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return width, height
        position += 2 + length
    raise ValueError("the JPEG has no frame header before its image data")
    # END SOLUTION


def read_guarded(data: bytes, max_pixels: int, side: int = 64) -> np.ndarray:
    """Exercise 12.3: an upload's pixels as RGB ``uint8`` ``(side, side, 3)``, or a refusal.

    Refuse with ``ServiceError(422, "too_many_pixels", message)`` an image whose header (your
    ``declared_size``) declares more than ``max_pixels`` pixels, before a single pixel is
    decoded, and with ``ServiceError(422, "undecodable", message)`` one whose header cannot be
    read or whose pixels do not decode. Otherwise decode it with Pillow, convert it to RGB and
    resize it to ``side`` x ``side``.
    """
    # BEGIN SOLUTION
    try:
        width, height = declared_size(data)
    except ValueError as error:
        raise ServiceError(422, "undecodable", f"unreadable image header: {error}") from error
    if width * height > max_pixels:
        raise ServiceError(422, "too_many_pixels", f"{width}x{height} is more than "
                           f"{max_pixels:,} pixels")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
            pixels = image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    except Exception as error:
        raise ServiceError(422, "undecodable", "the image does not decode") from error
    return np.asarray(pixels, dtype=np.uint8)
    # END SOLUTION
