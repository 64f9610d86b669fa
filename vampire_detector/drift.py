"""Drift: is tonight's queue still the crowd the detector was trained on?

Introduced in Chapter 10.

A detector is only as good as the likeness between its training portraits and the travellers at
the gate. When vampires start powdering their cheeks, or the guards photograph by candlelight,
accuracy falls silently: nobody at the gate knows the true labels. What *can* be watched without
labels is the distribution of the inputs, and of the model's answers.

The score is the Population Stability Index (PSI): bin a reference sample (clean training
portraits) into deciles, bin the live sample with the *same* edges, and add up
``(live - reference) * ln(live / reference)`` over the bins. Fixed edges make the score cheap
enough to compute on every batch. By the usual rule of thumb a PSI under 0.1 is noise, 0.1 to
0.25 is worth a look, and over 0.25 the population has moved.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vampire_detector.portraits import IMAGE_SIZE, SPLITS, make_portraits
from vampire_detector.predictor import Predictor

BINS = 10
THRESHOLD = 0.25  # PSI above this: the population has moved
FLOOR = 1e-4  # an empty bin would make ln(live / reference) infinite
WINDOW = 200  # live portraits per score: enough that a clean crowd scores well under 0.1
CHEEK = (slice(36, 40), slice(22, 32))  # the cheeks, in a portrait of side IMAGE_SIZE
Statistic = Callable[[np.ndarray], np.ndarray]


def cheek_saturation(images: np.ndarray) -> np.ndarray:
    """How colourful each sitter's cheeks are (0 grey, 1 vivid), from ``(N, H, W, 3)`` uint8.

    Vampires are pale; make-up gives them living colour, and candlelight washes out everyone.
    The patch is scaled to the image side, so it works at any size.
    """
    side = images.shape[1]
    def scaled(at: int) -> int:
        return at * side // IMAGE_SIZE

    rows, cols = (slice(scaled(s.start), max(scaled(s.stop), scaled(s.start) + 1))
                  for s in CHEEK)
    patch = images[:, rows, cols].astype(np.float32) / 255.0
    return (patch.max(axis=-1) - patch.min(axis=-1)).mean(axis=(1, 2))


@dataclass(frozen=True)
class Reference:
    """Bin edges and bin shares of a reference sample; a live sample is binned the same way."""

    edges: np.ndarray  # BINS - 1 inner edges: the deciles of the reference
    shares: np.ndarray  # the fraction of the reference in each of the BINS bins

    @classmethod
    def from_values(cls, values: np.ndarray, bins: int = BINS) -> Reference:
        edges = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, bins + 1)[1:-1])
        return cls(edges, bin_shares(values, edges))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The fraction of ``values`` in each bin that ``edges`` cut; outliers join the end bins."""
    counts = np.bincount(np.searchsorted(edges, values), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(reference: Reference, values: np.ndarray) -> float:
    """Population Stability Index of ``values`` against ``reference``: 0 means no change."""
    expected = np.clip(reference.shares, FLOOR, None)
    actual = np.clip(bin_shares(values, reference.edges), FLOOR, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def is_drifting(score: float, threshold: float = THRESHOLD) -> bool:
    return score > threshold


@lru_cache(maxsize=4)
def clean_reference(n: int = 1000, size: int = IMAGE_SIZE,
                    seed: int = SPLITS["train"]) -> Reference:
    """The reference for ``cheek_saturation``: clean training portraits (cached: about 1 s)."""
    return Reference.from_values(cheek_saturation(make_portraits(n, seed=seed, size=size)[0]))


def confidence_reference(predictor: Predictor, n: int = 500, size: int = IMAGE_SIZE,
                         seed: int = SPLITS["train"]) -> Reference:
    """The reference for the model's P(vampire) on clean training portraits."""
    images = make_portraits(n, seed=seed, size=size)[0]
    return Reference.from_values(predictor.probabilities(images)[:, 1])


class DriftWindow:
    """The PSI of the last ``size`` live values; one per signal, fed from one thread."""

    def __init__(self, reference: Reference, size: int = WINDOW):
        self.reference = reference
        self.values: deque[float] = deque(maxlen=size)

    def add(self, values: Iterable[float]) -> None:
        self.values.extend(float(v) for v in values)

    @property
    def full(self) -> bool:
        return len(self.values) == self.values.maxlen

    def score(self) -> float:
        """The PSI of the window; 0 until it is full, so a quiet start never rings the alarm."""
        return psi(self.reference, np.fromiter(self.values, float)) if self.full else 0.0
