"""The drift score must ring for make-up and candlelight, and stay quiet for a clean crowd."""

from __future__ import annotations

import numpy as np
import pytest

from vampire_detector.detector import Detector
from vampire_detector.drift import (
    THRESHOLD,
    WINDOW,
    DriftWindow,
    Reference,
    cheek_saturation,
    clean_reference,
    confidence_reference,
    is_drifting,
    psi,
)
from vampire_detector.portraits import SPLITS, make_portraits

LIVE_SEED = SPLITS["test"]


def live(population: str, seed: int = LIVE_SEED) -> np.ndarray:
    return make_portraits(WINDOW, seed=seed, population=population)[0]


def test_psi_is_zero_for_the_reference_itself_and_grows_with_a_shift() -> None:
    values = np.random.default_rng(0).normal(size=5000)
    reference = Reference.from_values(values)
    assert psi(reference, values) == pytest.approx(0.0, abs=1e-9)
    assert psi(reference, values + 0.5) > psi(reference, values + 0.1) > 0.0


def test_reference_bins_hold_a_tenth_each() -> None:
    reference = Reference.from_values(np.arange(1000.0))
    assert reference.shares == pytest.approx(np.full(10, 0.1))


@pytest.mark.parametrize("seed", [LIVE_SEED, 3, 4, 5, 6])
def test_a_fresh_clean_crowd_does_not_drift(seed: int) -> None:
    score = psi(clean_reference(), cheek_saturation(live("clean", seed)))
    assert not is_drifting(score), f"clean seed {seed}: PSI {score:.3f}"


@pytest.mark.parametrize("population", ["makeup", "candlelight"])
def test_shifted_crowds_drift(population: str) -> None:
    score = psi(clean_reference(), cheek_saturation(live(population)))
    assert is_drifting(score), f"{population}: PSI {score:.3f} <= {THRESHOLD}"


def test_confidence_drifts_for_makeup_but_not_for_clean() -> None:
    detector = Detector.from_weights()
    reference = confidence_reference(detector)
    scores = {population: psi(reference, detector.probabilities(live(population))[:, 1])
              for population in ("clean", "makeup")}
    assert not is_drifting(scores["clean"]) and is_drifting(scores["makeup"]), scores


def test_window_scores_zero_until_full_then_the_psi() -> None:
    window = DriftWindow(clean_reference(), size=WINDOW)
    values = cheek_saturation(live("candlelight"))
    window.add(values[:-1])
    assert window.score() == 0.0
    window.add(values[-1:])
    assert window.score() == pytest.approx(psi(clean_reference(), values))


def test_cheek_saturation_works_at_other_sizes() -> None:
    images = make_portraits(4, size=32)[0]
    assert cheek_saturation(images).shape == (4,)
