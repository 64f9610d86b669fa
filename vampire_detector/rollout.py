"""Trying a challenger without trusting it: a shadow that only watches, a canary that serves a few.

Introduced in Chapter 13.

*Shadow*: every portrait goes to the champion, whose answer is the one returned; a copy goes to
the challenger, whose answer is only compared and counted. If the challenger is wrong, slow or
broken, nobody at the gate notices: its exceptions are counted, never raised.

*Canary*: a small, fixed share of the traffic is answered by the challenger. The router decides
by hashing a key of the request (a traveller's id), so the same traveller always meets the
same model, and the share is exact over many keys rather than random per call.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Model = Callable[[object], str]  # a portrait in, a label out


@dataclass
class ShadowComparator:
    champion: Model
    challenger: Model
    agree: int = 0
    disagree: Counter = field(default_factory=Counter)  # (champion label, challenger label)
    challenger_errors: int = 0

    def __call__(self, portrait: object) -> str:
        """The champion's answer; the challenger's is compared with it and counted."""
        answer = self.champion(portrait)
        try:
            shadow = self.challenger(portrait)
        except Exception:  # the shadow must never change or break the real answer
            self.challenger_errors += 1
            return answer
        if shadow == answer:
            self.agree += 1
        else:
            self.disagree[(answer, shadow)] += 1
        return answer

    @property
    def compared(self) -> int:
        return self.agree + sum(self.disagree.values())

    @property
    def agreement(self) -> float:
        """Share of compared portraits on which both models gave the same label."""
        return self.agree / self.compared if self.compared else float("nan")


def bucket(key: str, buckets: int = 10_000) -> int:
    """A stable bucket in ``[0, buckets)`` for ``key``: the same on every replica and run."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % buckets


@dataclass(frozen=True)
class CanaryRouter:
    """Sends ``weight`` (a share in [0, 1]) of the keys to the challenger, the rest to the
    champion."""

    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"the canary's weight is a share in [0, 1], got {self.weight}")

    def route(self, key: str) -> str:
        return "challenger" if bucket(key) < round(self.weight * 10_000) else "champion"

    def split(self, keys: Sequence[str]) -> Counter:
        """How many of ``keys`` each side receives."""
        return Counter(self.route(key) for key in keys)
