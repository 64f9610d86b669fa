"""Who may ask the detector: API keys, and a rate limit for each of them.

Introduced in Chapter 6 (the service); Chapter 9 mounts the keys from a Kubernetes Secret.

The service never stores a key, only its SHA-256 digest (``VAMPIRE_API_KEYS_SHA256``, or a file
of digests such as a mounted Secret, ``VAMPIRE_API_KEYS_FILE``): whoever reads the settings or
the pod's environment learns no key. A presented key is hashed and compared with *every* stored
digest using ``hmac.compare_digest``, whose time does not depend on where two strings differ,
so timing the answers reveals nothing about the keys.

Each key (each client address when no keys are set) draws from its own token bucket: ``burst``
requests at once, refilled at ``rate_per_s``; an empty bucket answers 429 with ``Retry-After``.

With no keys configured, everyone may ask: fine on a laptop or in a chapter, never in
production.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from vampire_detector.service.errors import REQUEST_ID, ServiceError, error_response

HEADER = "X-API-Key"
CALLER = "vampire_detector.caller"  # where Admission leaves the admitted caller, in the scope
DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest(key: str) -> str:
    """The SHA-256 hex digest of a key: what the settings hold in its place."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_digests(text: str) -> list[str]:
    """Digests separated by commas, spaces or lines; ``#`` starts a comment line."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    digests = [item.lower() for item in re.split(r"[\s,]+", " ".join(lines)) if item]
    bad = [item[:8] + "..." for item in digests if not DIGEST.match(item)]
    if bad:
        raise ValueError(f"API key digests must be 64 hex digits (SHA-256), not {bad}")
    return digests


class ApiKeys:
    """The digests of the keys that may call the detector; none means no authentication."""

    def __init__(self, digests: Iterable[str] = ()) -> None:
        self.digests = tuple(bytes.fromhex(item) for item in digests)

    @classmethod
    def load(cls, listed: str = "", file: Path | None = None) -> ApiKeys:
        text = listed + "\n" + (file.read_text() if file is not None else "")
        return cls(parse_digests(text))

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def identify(self, presented: str | None) -> str:
        """A short id of the caller's key (a digest prefix, fine to log), or 401 / 403."""
        if not presented:
            raise ServiceError(401, "missing_api_key", f"send your API key in the {HEADER} "
                               "header", headers={"WWW-Authenticate": f'APIKey header="{HEADER}"'})
        candidate = hashlib.sha256(presented.encode()).digest()
        known = False
        for stored in self.digests:  # every one, always: no early exit to time
            known |= hmac.compare_digest(candidate, stored)
        if not known:
            raise ServiceError(403, "invalid_api_key", "this API key is not valid")
        return candidate.hex()[:12]


class TokenBuckets:
    """One token bucket per caller: ``burst`` requests at once, ``rate_per_s`` sustained.

    Used from the event loop only, so it needs no lock. At most ``max_callers`` buckets are
    kept (the least recently used go first), so a crowd of addresses cannot grow it forever.
    """

    def __init__(self, rate_per_s: float, burst: int, max_callers: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self.rate_per_s, self.burst, self.max_callers = rate_per_s, burst, max_callers
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str) -> None:
        """Spend one token of ``caller``'s bucket, or answer 429 with when to come back."""
        now = self.clock()
        tokens, then = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate_per_s)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
        else:
            self._buckets[caller] = (tokens, now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        if tokens < 1:
            wait = math.ceil((1 - tokens) / self.rate_per_s)
            raise ServiceError(429, "rate_limited", f"at most {self.rate_per_s:g} requests "
                               f"per second (bursts of {self.burst}); retry in {wait} s",
                               retry_after=wait)


class Gatekeeper:
    """Keys and rate limits together: ``admit`` says who is asking, or refuses them."""

    def __init__(self, keys: ApiKeys, buckets: TokenBuckets | None = None) -> None:
        self.keys, self.buckets = keys, buckets

    @property
    def active(self) -> bool:
        """Whether it checks anything: keys are configured, or a rate limit is."""
        return self.keys.enabled or self.buckets is not None

    def admit(self, presented: str | None, address: str) -> str:
        caller = self.keys.identify(presented) if self.keys.enabled else f"address:{address}"
        if self.buckets is not None:
            self.buckets.take(caller)
        return caller


class Admission:
    """ASGI middleware: ``gatekeeper.admit`` the callers of ``paths`` before their body is read.

    A stranger's upload is refused on its headers alone, so it never costs the parsing or the
    spooling of a multipart body. The route's security dependency (``caller``) then finds the
    caller admitted here, and documents the header in the OpenAPI schema.
    """

    def __init__(self, app: ASGIApp, gatekeeper: Gatekeeper, paths: Iterable[str]) -> None:
        self.app, self.gatekeeper, self.paths = app, gatekeeper, frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        try:
            scope[CALLER] = self.gatekeeper.admit(Headers(scope=scope).get(HEADER), address)
        except ServiceError as error:
            response = error_response(error.status, error.code, error.message,
                                      error.retry_after, scope.get(REQUEST_ID))
            response.headers.update(error.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
