"""Chapter 15 — Capstone.

The analyser is graded on load tests drawn here at random, against NumPy's nearest-rank
percentiles; the error-budget functions on the arithmetic of a 30-day SLO.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture); the expected values
are computed here, from the grader's own copy of each load test.

Wrong answers these tests catch, each with feedback that names the problem:

- 15.1 ``percentiles-in-seconds``: latencies reported in seconds under a ``_ms`` name.
- 15.1 ``percentiles-over-every-request``: failed requests' latencies mixed into the percentiles.
- 15.1 ``rank-off-by-one``, ``percentile-by-truncation``: a rank that is not ceil(p/100 * n).
- 15.1 ``error-rate-over-failures-only``: error rates as shares of the failures, not of all.
- 15.1 ``throughput-counts-failures``: refused and failed requests counted as throughput.
- 15.1 ``wall-time-ends-at-last-send``: the wall time stops at the last request sent.
- 15.2 ``burn-rate-is-the-error-rate``: the error rate, not divided by the error budget.
- 15.2 ``budget-clamped-at-zero``: an overspent budget shown as 0 instead of negative.
- 15.2 ``no-validation``: an SLO of 1 or more failures than requests accepted.
- 15.2 ``page-on-either-window``: paging when only one of the two windows burns.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ch15(submission):
    return submission("ch15_capstone")


# Exercise 15.1 ------------------------------------------------------------------------------

class Row(NamedTuple):
    """The grader's own copy of one sample (the student's Sample lives in the sandbox)."""

    status: int | None
    latency_s: float
    started_s: float


def load_test(ch15, seed: int, n: int = 997) -> tuple[list, list[Row]]:
    """A night at the gate: mostly 200s, some refusals, a few 503s and lost connections.

    Returns the student's samples and the grader's rows, the same values in the same order.
    """
    rng = np.random.default_rng(seed)
    statuses = rng.choice([200, 200, 200, 200, 200, 200, 415, 422, 503, 0], size=n)
    latencies = rng.lognormal(-3.5, 0.6, size=n)
    starts = np.sort(rng.uniform(0, 20, size=n))
    rows = [Row(None if status == 0 else int(status), float(latency), float(start))
            for status, latency, start in zip(statuses, latencies, starts, strict=True)]
    make = ch15.Sample  # one look-up, then one call per sample
    return [make(*row) for row in rows], rows


@pytest.mark.exercise("15.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("seed", [1, 2])
def test_percentiles_are_nearest_rank_over_successes(ch15, seed):
    """15.1 p50, p95 and p99 are nearest-rank percentiles of the successful requests, in ms"""
    samples, rows = load_test(ch15, seed)
    ok = np.array([s.latency_s for s in rows if s.status == 200]) * 1000
    summary = ch15.summarise(samples)
    for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        expected = float(np.percentile(ok, q, method="inverted_cdf"))
        assert getattr(summary, name) == pytest.approx(expected), \
            f"{name} is not the nearest-rank percentile of the 2xx latencies in milliseconds"


@pytest.mark.exercise("15.1")
@pytest.mark.points(2)
def test_rates_and_throughput(ch15):
    """15.1 Error rates by kind, and successful requests per second of wall time"""
    samples, rows = load_test(ch15, 3)
    summary = ch15.summarise(samples)
    n = len(rows)
    assert summary.requests == n
    assert summary.client_error_rate == pytest.approx(
        sum(s.status in (415, 422) for s in rows) / n), "4xx: the share of all requests"
    assert summary.server_error_rate == pytest.approx(
        sum(s.status == 503 for s in rows) / n), "5xx: the share of all requests"
    assert summary.transport_error_rate == pytest.approx(
        sum(s.status is None for s in rows) / n)
    wall = max(s.started_s + s.latency_s for s in rows) - min(s.started_s for s in rows)
    assert summary.throughput == pytest.approx(sum(s.status == 200 for s in rows) / wall), \
        "throughput counts 2xx answers per second, from the first request to the last answer"


@pytest.mark.exercise("15.1")
@pytest.mark.points(1)
def test_edge_cases(ch15):
    """15.1 No successes gives NaN percentiles; no samples at all is a ValueError"""
    failed = [ch15.Sample(503, 0.01, 0.0), ch15.Sample(None, 5.0, 0.5)]
    summary = ch15.summarise(failed)
    assert math.isnan(summary.p95_ms) and summary.server_error_rate == pytest.approx(0.5)
    assert summary.throughput == 0
    with pytest.raises(ValueError):
        ch15.summarise([])


# Exercise 15.2 ------------------------------------------------------------------------------

@pytest.mark.exercise("15.2")
@pytest.mark.points(2)
def test_burn_rate_and_budget(ch15):
    """15.2 burn_rate and budget_left follow the SLO's arithmetic"""
    assert ch15.burn_rate(0.995, 10_000, 50) == pytest.approx(1.0), \
        "failing exactly the allowed share burns at rate 1"
    assert ch15.burn_rate(0.999, 50_000, 720) == pytest.approx(14.4)
    assert ch15.burn_rate(0.99, 0, 0) == 0
    assert ch15.budget_left(0.995, 2_000_000, 2_500) == pytest.approx(0.75)
    assert ch15.budget_left(0.99, 1000, 30) == pytest.approx(-2.0), \
        "an overspent budget is negative"


@pytest.mark.exercise("15.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("args", [(1.0, 10, 1), (0.0, 10, 1), (0.99, 10, 11), (0.99, 10, -1)])
def test_nonsense_is_refused(ch15, args):
    """15.2 An SLO outside (0, 1) or more failures than requests is a ValueError"""
    with pytest.raises(ValueError):
        ch15.burn_rate(*args)


@pytest.mark.exercise("15.2")
@pytest.mark.points(2)
def test_paging_needs_both_windows(ch15):
    """15.2 should_page pages only when the hour and the last five minutes both burn fast"""
    slo = 0.999
    assert ch15.should_page(slo, (100_000, 1_500), (8_000, 120))
    assert not ch15.should_page(slo, (100_000, 1_500), (8_000, 8)), \
        "the burn is over: the last five minutes are clean"
    assert not ch15.should_page(slo, (100_000, 200), (8_000, 120)), \
        "a five-minute blip within a calm hour does not wake anyone"
    assert ch15.should_page(slo, (1000, 3), (100, 1), threshold=2.5)
