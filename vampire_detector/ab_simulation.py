"""How often an A/B decision is wrong: thousands of simulated canaries, drawn with numpy.

Introduced in Chapter 13.

The canary compares the champion's error rate with the challenger's on live traffic. Each arm
sees ``n`` travellers; each traveller is misjudged with the arm's true error rate, so an arm's
error count is a binomial draw. A test then decides: the challenger is better, the champion is
better, or the data cannot tell. Repeating the experiment many times with known true rates
says how often that decision is right, at each sample size:

- the *power*: the share of experiments that pick the challenger when it truly is better;
- the *false positive rate*: the share that declare a difference between two arms with the
  same true rate (an A/A experiment); the test's ``alpha`` promises it is about ``alpha``;
- the *wrong way*: the share that pick the worse arm.

The test here is the likelihood-ratio test of two proportions (the G-test): twice the log of
how much better the two arms' own error rates explain their counts than one shared rate does.
Under the null hypothesis it follows a chi-squared distribution with one degree of freedom,
like the square of the two-proportion z-statistic, so both tests decide alike on samples this
large. It is stated with critical values rather than p-values, vectorised over experiments.
``decide`` may be replaced by any test with the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

Decide = Callable[[np.ndarray, int, np.ndarray, int, float], np.ndarray]
CHALLENGER, NONE, CHAMPION = 1, 0, -1  # what one experiment decided


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x * log(y)``, with 0 where ``x`` is 0 (an empty cell adds nothing)."""
    safe = np.where(x > 0, y, 1.0)
    return np.where(x > 0, x * np.log(safe), 0.0)


def likelihood_ratio(champion_errors: np.ndarray, champion_n: int,
                     challenger_errors: np.ndarray, challenger_n: int) -> np.ndarray:
    """The G statistic of each experiment's 2x2 table (arm x error or not)."""
    e1 = np.asarray(champion_errors, dtype=float)
    e2 = np.asarray(challenger_errors, dtype=float)
    total = champion_n + challenger_n
    errors = e1 + e2
    g = np.zeros(np.broadcast(e1, e2).shape)
    for observed, arm, column in ((e1, champion_n, errors), (champion_n - e1, champion_n,
                                                             total - errors),
                                  (e2, challenger_n, errors), (challenger_n - e2, challenger_n,
                                                               total - errors)):
        expected = arm * column / total
        g += _xlogy(observed, observed / np.where(expected > 0, expected, 1.0))
    return 2.0 * g


def decide(champion_errors: np.ndarray, champion_n: int, challenger_errors: np.ndarray,
           challenger_n: int, alpha: float = 0.05) -> np.ndarray:
    """For each experiment: ``CHALLENGER`` or ``CHAMPION`` (the arm with fewer errors) when the
    likelihood-ratio test rejects equal rates at level ``alpha``, else ``NONE``."""
    critical = NormalDist().inv_cdf(1 - alpha / 2) ** 2  # chi-squared(1) at 1 - alpha
    g = likelihood_ratio(champion_errors, champion_n, challenger_errors, challenger_n)
    lower = np.where(np.asarray(challenger_errors) / challenger_n
                     < np.asarray(champion_errors) / champion_n, CHALLENGER, CHAMPION)
    return np.where(g > critical, lower, NONE)


@dataclass(frozen=True)
class Outcome:
    """The shares of ``experiments`` simulated canaries that decided each way."""

    n: int  # travellers per arm
    experiments: int
    challenger: float  # picked the challenger
    champion: float  # picked the champion
    undecided: float

    @property
    def decided(self) -> float:
        return self.challenger + self.champion


def simulate(p_champion: float, p_challenger: float, n: int, *, experiments: int = 10_000,
             alpha: float = 0.05, rng: np.random.Generator | int = 0,
             test: Decide = decide) -> Outcome:
    """Run ``experiments`` canaries with ``n`` travellers per arm and the true error rates given;
    count what ``test`` decided."""
    for name, p in (("p_champion", p_champion), ("p_challenger", p_challenger)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} is an error rate in [0, 1], got {p}")
    if n < 1 or experiments < 1:
        raise ValueError(f"need at least one traveller and one experiment, got {n}, "
                         f"{experiments}")
    rng = np.random.default_rng(rng)
    champion = rng.binomial(n, p_champion, experiments)
    challenger = rng.binomial(n, p_challenger, experiments)
    picked = test(champion, n, challenger, n, alpha)
    return Outcome(n, experiments, float(np.mean(picked == CHALLENGER)),
                   float(np.mean(picked == CHAMPION)), float(np.mean(picked == NONE)))


def error_rates(p_champion: float, p_challenger: float, sizes: Sequence[int], *,
                experiments: int = 10_000, alpha: float = 0.05, seed: int = 0,
                test: Decide = decide) -> list[dict[str, float]]:
    """At each size: the power and wrong-way share when the rates differ as given, and the
    false positive rate of an A/A experiment in which both arms err at ``p_champion``."""
    rows = []
    for i, n in enumerate(sizes):
        ab = simulate(p_champion, p_challenger, n, experiments=experiments, alpha=alpha,
                      rng=np.random.default_rng([seed, i, 0]), test=test)
        aa = simulate(p_champion, p_champion, n, experiments=experiments, alpha=alpha,
                      rng=np.random.default_rng([seed, i, 1]), test=test)
        better_is_challenger = p_challenger < p_champion
        rows.append({"n": n,
                     "power": ab.challenger if better_is_challenger else ab.champion,
                     "wrong way": ab.champion if better_is_challenger else ab.challenger,
                     "undecided": ab.undecided,
                     "false positive (A/A)": aa.decided})
    return rows


def size_for_power(p_champion: float, p_challenger: float, power: float = 0.8, *,
                   experiments: int = 20_000, alpha: float = 0.05, seed: int = 0,
                   test: Decide = decide, largest: int = 1_000_000) -> int:
    """The smallest travellers per arm whose *simulated* power reaches ``power``, found by
    bisection (each size simulated with its own seeded draws)."""
    if p_champion == p_challenger:
        raise ValueError("equal error rates cannot be told apart by any sample")

    def reaches(n: int) -> bool:
        outcome = simulate(p_champion, p_challenger, n, experiments=experiments, alpha=alpha,
                           rng=np.random.default_rng([seed, n]), test=test)
        right = outcome.challenger if p_challenger < p_champion else outcome.champion
        return right >= power

    low, high = 1, 2
    while not reaches(high):
        low, high = high, high * 2
        if high > largest:
            raise ValueError(f"more than {largest} travellers per arm would be needed")
    while high - low > 1:  # reaches(high) holds, reaches(low) does not (or low is 1)
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high
