"""The A/B simulation: the likelihood-ratio decision, its error rates, and the sample size."""

from __future__ import annotations

import math
import time
from statistics import NormalDist

import numpy as np
import pytest

from vampire_detector import ab_simulation as ab


def g_by_hand(e1: int, n1: int, e2: int, n2: int) -> float:
    cells = [(e1, n1, e1 + e2), (n1 - e1, n1, n1 + n2 - e1 - e2),
             (e2, n2, e1 + e2), (n2 - e2, n2, n1 + n2 - e1 - e2)]
    return 2 * sum(o * math.log(o / (n * col / (n1 + n2))) for o, n, col in cells if o)


@pytest.mark.parametrize(("e1", "n1", "e2", "n2"), [(10, 100, 5, 100), (30, 200, 12, 90),
                                                    (0, 50, 7, 50), (50, 50, 40, 60)])
def test_the_statistic_is_the_likelihood_ratio_of_the_table(e1, n1, e2, n2) -> None:
    got = ab.likelihood_ratio(np.array([e1]), n1, np.array([e2]), n2)[0]
    assert got == pytest.approx(g_by_hand(e1, n1, e2, n2), rel=1e-9)


def test_equal_rates_and_empty_or_full_arms_give_zero() -> None:
    g = ab.likelihood_ratio(np.array([10, 0, 40]), 100, np.array([10, 0, 40]), 100)
    assert g.tolist() == [0.0, 0.0, pytest.approx(0.0, abs=1e-9)]
    assert ab.likelihood_ratio(np.array([100]), 100, np.array([100]), 100)[0] == 0.0


def test_the_decision_names_the_arm_with_fewer_errors_when_significant() -> None:
    picked = ab.decide(np.array([100, 50, 50, 52]), 1000, np.array([50, 100, 50, 50]), 1000)
    assert picked.tolist() == [ab.CHALLENGER, ab.CHAMPION, ab.NONE, ab.NONE]
    # at the edge: G just above and below the chi-squared(1) critical value 3.84 at alpha 5%
    critical = NormalDist().inv_cdf(0.975) ** 2
    g = ab.likelihood_ratio(np.array([100]), 1000, np.array([74]), 1000)[0]
    assert (g > critical) == (ab.decide(np.array([100]), 1000, np.array([74]), 1000)[0] != 0)
    assert ab.decide(np.array([100]), 1000, np.array([74]), 1000, alpha=1e-6)[0] == ab.NONE


def test_an_aa_canary_declares_a_difference_about_alpha_of_the_time() -> None:
    outcome = ab.simulate(0.05, 0.05, 2000, experiments=20_000, rng=1)
    assert outcome.decided == pytest.approx(0.05, abs=0.006)
    assert outcome.challenger == pytest.approx(outcome.champion, abs=0.006)  # no favourite
    assert outcome.challenger + outcome.champion + outcome.undecided == pytest.approx(1.0)


def test_the_power_grows_with_the_sample_and_the_wrong_way_vanishes() -> None:
    rows = ab.error_rates(0.10, 0.05, [50, 200, 800], experiments=5000)
    powers = [row["power"] for row in rows]
    assert powers == sorted(powers) and powers[-1] > 0.95 and powers[0] < 0.5
    assert rows[-1]["wrong way"] == 0.0
    assert all(0.02 < row["false positive (A/A)"] < 0.09 for row in rows)


def test_a_worse_challenger_is_counted_from_the_champion_side() -> None:
    (row,) = ab.error_rates(0.05, 0.10, [800], experiments=5000)
    assert row["power"] > 0.95 and row["wrong way"] < 0.01


def test_seeded_runs_repeat() -> None:
    assert ab.simulate(0.1, 0.08, 300, rng=7) == ab.simulate(0.1, 0.08, 300, rng=7)
    assert ab.error_rates(0.1, 0.08, [100], seed=3) == ab.error_rates(0.1, 0.08, [100], seed=3)


def normal_approximation(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> float:
    za, zb = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    p = (p1 + p2) / 2
    root = za * math.sqrt(2 * p * (1 - p)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return root**2 / (p1 - p2) ** 2


@pytest.mark.parametrize(("p1", "p2"), [(0.05, 0.025), (0.2, 0.15), (0.04, 0.08)])
def test_the_simulated_size_agrees_with_the_normal_approximation(p1: float, p2: float) -> None:
    started = time.perf_counter()
    n = ab.size_for_power(p1, p2)
    assert time.perf_counter() - started < 5
    assert n == pytest.approx(normal_approximation(p1, p2), rel=0.1)
    assert ab.simulate(p1, p2, n, experiments=20_000, rng=[0, n]).decided >= 0.8


@pytest.mark.parametrize(("call", "says"), [
    (lambda: ab.simulate(1.5, 0.1, 10), "error rate"),
    (lambda: ab.simulate(0.1, 0.1, 0), "at least one"),
    (lambda: ab.size_for_power(0.1, 0.1), "equal error rates"),
    (lambda: ab.size_for_power(0.1, 0.1001, largest=1000), "more than 1000"),
])
def test_impossible_requests_say_why(call, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        call()
