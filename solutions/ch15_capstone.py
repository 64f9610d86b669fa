"""Chapter 15 exercises: the capstone.

Fill in the function bodies below, then grade them with

    pytest autograder/test_ch15_capstone.py
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple


class Sample(NamedTuple):
    """One request of a load test, as the load generator saw it."""

    status: int | None  # the HTTP status, or None when no answer came (a transport error)
    latency_s: float  # from sending the request to the end of its answer
    started_s: float  # when it was sent, on the load generator's clock


@dataclass(frozen=True)
class Summary:
    requests: int  # every request sent
    throughput: float  # successful (2xx) requests per second of the test's wall time
    p50_ms: float  # latency percentiles of the successful requests, in milliseconds
    p95_ms: float
    p99_ms: float
    client_error_rate: float  # share of all requests answered 4xx
    server_error_rate: float  # share answered 5xx
    transport_error_rate: float  # share with no answer at all


def summarise(samples: Sequence[Sample]) -> Summary:
    """Exercise 15.1: the numbers of a load test, from its raw samples.

    The wall time runs from the first request sent to the last answer received. Percentiles
    use the nearest-rank method: the p-th percentile of n sorted values is the value at rank
    ceil(p / 100 * n) (ranks start at 1). With no successful request they are NaN. Raise
    ValueError when there are no samples.
    """
    # BEGIN SOLUTION
    # Hint: a 2xx status is a success; a 4xx the client's fault; a 5xx the server's.
    if not samples:
        raise ValueError("a load test without samples has nothing to summarise")
    ok = sorted(s.latency_s for s in samples if s.status is not None and 200 <= s.status < 300)
    began = min(s.started_s for s in samples)
    ended = max(s.started_s + s.latency_s for s in samples)

    def rank(p: float) -> float:
        return ok[math.ceil(p / 100 * len(ok)) - 1] * 1000 if ok else math.nan

    def share(low: int, high: int) -> float:
        hits = sum(1 for s in samples if s.status is not None and low <= s.status < high)
        return hits / len(samples)

    return Summary(requests=len(samples),
                   throughput=len(ok) / (ended - began) if ended > began else math.nan,
                   p50_ms=rank(50), p95_ms=rank(95), p99_ms=rank(99),
                   client_error_rate=share(400, 500), server_error_rate=share(500, 600),
                   transport_error_rate=sum(s.status is None for s in samples) / len(samples))
    # END SOLUTION


def burn_rate(slo: float, requests: int, failures: int) -> float:
    """Exercise 15.2: how fast a window of traffic spends the error budget.

    ``slo`` is the target share of good requests (0.995 for 99.5%). A burn rate of 1 spends
    exactly the budget over the SLO's period; 14.4 spends a 30-day budget in 50 hours. A window
    without requests burns nothing. Raise ValueError unless 0 < slo < 1 and
    0 <= failures <= requests.
    """
    # BEGIN SOLUTION
    if not 0 < slo < 1:
        raise ValueError(f"an SLO is a share between 0 and 1, not {slo}")
    if not 0 <= failures <= requests:
        raise ValueError("failures must be between 0 and the number of requests")
    return (failures / requests) / (1 - slo) if requests else 0.0
    # END SOLUTION


def budget_left(slo: float, requests: int, failures: int) -> float:
    """Exercise 15.2: the share of the period's error budget not yet spent (below 0: overspent).

    The budget is the failures the SLO allows among the period's ``requests`` so far.
    """
    # BEGIN SOLUTION
    # Hint: the budget spent is the burn rate of the period so far.
    return 1.0 - burn_rate(slo, requests, failures)
    # END SOLUTION


def should_page(slo: float, last_hour: tuple[int, int], last_5_minutes: tuple[int, int],
                threshold: float = 14.4) -> bool:
    """Exercise 15.2: wake Dracula? Each window is ``(requests, failures)``.

    Page when both the last hour and the last five minutes burn at ``threshold`` or faster:
    the hour proves the burn is significant, the five minutes that it is still going on.
    """
    # BEGIN SOLUTION
    return (burn_rate(slo, *last_hour) >= threshold
            and burn_rate(slo, *last_5_minutes) >= threshold)
    # END SOLUTION
