"""Chapter 13 exercises: make-up night, releasing a new model safely.

Fill in the function bodies below, then grade them with

    pytest autograder/test_ch13_release.py
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist

Model = Callable[[object], str]  # a portrait in, a label out
KINDS = ("at least", "at most")


def gate_report(measured: Mapping[str, float], budgets: Sequence[Mapping[str, object]],
                champion: Mapping[str, float] | None = None) -> dict[str, object]:
    """Exercise 13.1: check a candidate's measurements against the release gate's budgets.

    Each budget is a dict with a ``name`` (unique, e.g. ``"make-up vs champion"``), the
    ``measure`` it limits (a key of ``measured``), a ``kind``, ``"at least"`` or ``"at most"``,
    and exactly one of:

    - ``limit``: an absolute threshold (``makeup_accuracy`` at least 0.90);
    - ``margin``: a threshold relative to the champion's own measurement of the same measure
      (in ``champion``): *at least* ``champion - margin`` or *at most* ``champion + margin``.
      "No worse than the champion by more than 1 point" is ``kind="at least", margin=0.01``.

    A value exactly at its threshold passes. A measurement that is missing or not a number
    (NaN) fails, and so does a relative budget whose champion value is missing or NaN; those
    rows say why in their ``reason``. A ``kind`` other than the two, or a budget with both or
    neither of ``limit`` and ``margin``, is a ValueError.

    Return ``{"passed": bool, "failures": [names of the failing budgets, in budget order],
    "rows": [one dict per budget, in order]}``, each row ``{"name", "measure", "kind",
    "threshold": float (NaN when it cannot be computed), "measured": float or None (None when
    missing), "passed": bool, "reason": str ("" when it passed)}``.
    """
    # BEGIN SOLUTION
    # Hint: math.isnan tells NaN apart; a comparison with NaN is always False, which is a
    # failure here only by luck: say why in the reason.
    champion = champion or {}
    rows = []
    for budget in budgets:
        name, measure, kind = budget["name"], budget["measure"], budget["kind"]
        if kind not in KINDS:
            raise ValueError(f"budget {name}: kind must be one of {KINDS}, not {kind!r}")
        if ("limit" in budget) == ("margin" in budget):
            raise ValueError(f"budget {name}: give exactly one of 'limit' and 'margin'")
        value = measured.get(measure)
        value = None if value is None else float(value)
        reason = ""
        if "limit" in budget:
            threshold = float(budget["limit"])
        else:
            base = champion.get(measure)
            base = math.nan if base is None else float(base)
            margin = float(budget["margin"])
            threshold = base - margin if kind == "at least" else base + margin
            if math.isnan(base):
                reason = f"the champion's {measure} was not measured: nothing to compare with"
        if value is None:
            reason = f"{measure} was not measured"
        elif math.isnan(value):
            reason = f"{measure} is not a number (NaN)"
        elif not reason:
            ok = value >= threshold if kind == "at least" else value <= threshold
            if not ok:
                reason = f"{measure} = {value:g} is not {kind} {threshold:g}"
        rows.append({"name": name, "measure": measure, "kind": kind, "threshold": threshold,
                     "measured": value, "passed": not reason, "reason": reason})
    failures = [row["name"] for row in rows if not row["passed"]]
    return {"passed": not failures, "failures": failures, "rows": rows}
    # END SOLUTION


class ShadowComparator:
    """Exercise 13.2: the champion answers; the challenger is only watched.

    ``comparator(portrait)`` returns the champion's answer, unchanged, as soon as the champion
    has given it: the challenger runs afterwards on one background thread, in arrival order,
    so that a slow challenger never delays the gate. Its answer is compared with the
    champion's and counted. A challenger that raises is counted as an error: the exception
    never reaches the caller and never changes an answer. (The champion is the real answer:
    if the champion raises, that exception does reach the caller, and nothing is counted.)

    ``summary()`` waits until every challenger call already started has finished, then returns
    ``{"requests": answered, "compared": challenger answers compared, "errors": challenger
    exceptions, "agreement": share of compared requests on which both gave the same label (NaN
    when none was compared), "per_label": {champion's label: agreement among the compared
    requests the champion gave that label}, "disagreements": the earliest ``log_limit``
    disagreements, each ``{"request": its number from 0 in arrival order, "champion": label,
    "challenger": label}``, "disagreed": how many there were in all}``.

    ``close()`` waits for the challenger calls too, and stops the background thread.
    """

    def __init__(self, champion: Model, challenger: Model, log_limit: int = 100):
        # BEGIN SOLUTION
        self.champion, self.challenger, self.log_limit = champion, challenger, log_limit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._lock = threading.Lock()
        self._pending = []
        self.requests = self.errors = self.disagreed = 0
        self.compared: Counter = Counter()  # champion's label -> compared requests
        self.agreed: Counter = Counter()  # champion's label -> requests both answered alike
        self.log: list[dict[str, object]] = []
        # END SOLUTION

    def __call__(self, portrait: object) -> str:
        # BEGIN SOLUTION
        # Hint: an executor's submit() returns at once; the answer must not wait for it.
        answer = self.champion(portrait)

        def watch(number: int) -> None:
            try:
                guess = self.challenger(portrait)
            except Exception:  # a failing challenger is counted, never raised
                with self._lock:
                    self.errors += 1
                return
            with self._lock:
                self.compared[answer] += 1
                if guess == answer:
                    self.agreed[answer] += 1
                    return
                self.disagreed += 1
                if len(self.log) < self.log_limit:
                    self.log.append({"request": number, "champion": answer,
                                     "challenger": guess})

        with self._lock:
            number = self.requests
            self.requests += 1
            self._pending.append(self._pool.submit(watch, number))
        return answer
        # END SOLUTION

    def summary(self) -> dict[str, object]:
        # BEGIN SOLUTION
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()
        with self._lock:
            compared, agreed = sum(self.compared.values()), sum(self.agreed.values())
            return {"requests": self.requests, "compared": compared, "errors": self.errors,
                    "agreement": agreed / compared if compared else math.nan,
                    "per_label": {label: self.agreed[label] / n
                                  for label, n in self.compared.items()},
                    "disagreements": [dict(entry) for entry in self.log],
                    "disagreed": self.disagreed}
        # END SOLUTION

    def close(self) -> None:
        # BEGIN SOLUTION
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()
        self._pool.shutdown(wait=True)
        # END SOLUTION


def ab_test(champion_errors: int, champion_n: int, challenger_errors: int, challenger_n: int,
            alpha: float = 0.05) -> dict[str, object]:
    """Exercise 13.3: do the two arms of the canary make errors at different rates?

    A two-proportion z-test, two-sided, at significance level ``alpha``: with error rates
    ``p1 = champion_errors / champion_n`` and ``p2 = challenger_errors / challenger_n``, the
    statistic is ``z = (p2 - p1) / se``, where ``se`` is the standard error under the null
    hypothesis (both arms share one error rate, estimated from both arms pooled). When both arms
    made no error, or both made only errors, ``z`` is 0 and the p-value 1.

    Return ``{"z": z, "p_value": two-sided p-value, "significant": p_value < alpha,
    "better": "challenger" or "champion" (the arm with the lower error rate) when significant,
    else None}``. Counts that are negative, errors above their arm's size, or an empty arm
    are a ValueError.
    """
    # BEGIN SOLUTION
    # Hint: statistics.NormalDist().cdf is the standard normal's distribution function.
    for errors, n in ((champion_errors, champion_n), (challenger_errors, challenger_n)):
        if n <= 0 or errors < 0 or errors > n:
            raise ValueError(f"{errors} errors in an arm of {n} requests is not a count")
    p1, p2 = champion_errors / champion_n, challenger_errors / challenger_n
    pooled = (champion_errors + challenger_errors) / (champion_n + challenger_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / champion_n + 1 / challenger_n))
    z = (p2 - p1) / se if se > 0 else 0.0
    p_value = 2 * (1 - NormalDist().cdf(abs(z)))
    significant = p_value < alpha
    better = ("challenger" if p2 < p1 else "champion") if significant else None
    return {"z": z, "p_value": p_value, "significant": significant, "better": better}
    # END SOLUTION


def sample_size_per_arm(p_champion: float, p_challenger: float, alpha: float = 0.05,
                        power: float = 0.8) -> int:
    """Exercise 13.3: travellers per arm needed to tell two error rates apart.

    The normal approximation for a two-sided two-proportion z-test at level ``alpha`` with
    the given ``power``: with ``p1, p2`` the two error rates, ``p = (p1 + p2) / 2``,
    ``za = z(1 - alpha / 2)`` and ``zb = z(power)`` (standard normal quantiles),

        n = (za * sqrt(2 p (1 - p)) + zb * sqrt(p1 (1 - p1) + p2 (1 - p2)))**2 / (p1 - p2)**2

    rounded *up* to a whole traveller. Equal rates, rates outside (0, 1), or ``alpha`` or
    ``power`` outside (0, 1) are a ValueError.
    """
    # BEGIN SOLUTION
    # Hint: statistics.NormalDist().inv_cdf gives the quantiles.
    p1, p2 = p_champion, p_challenger
    for name, value in (("p_champion", p1), ("p_challenger", p2), ("alpha", alpha),
                        ("power", power)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, not {value}")
    if p1 == p2:
        raise ValueError("equal error rates cannot be told apart by any sample")
    za, zb = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    p = (p1 + p2) / 2
    root = za * math.sqrt(2 * p * (1 - p)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p1 - p2) ** 2)
    # END SOLUTION
