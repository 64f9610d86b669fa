"""The prediction API of the course, shared by every runtime (and free of PyTorch).

Introduced in Chapter 1.

A runtime (eager PyTorch, ONNX Runtime, a web service client...) supplies ``probabilities`` and
inherits ``predict`` and ``predict_png``, so the border checkpoint never cares what runs
underneath.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from vampire_detector.images import from_png
from vampire_detector.portraits import LABELS


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from a batch of logits ``(N, classes)``, computed stably."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    label: str  # "human" or "vampire"
    probability: float  # of ``label``, in [0.5, 1]


class Predictor(ABC):
    """Subclasses implement ``probabilities``; labels and PNG input come for free."""

    @abstractmethod
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for RGB ``uint8`` images ``(N, H, W, 3)``."""

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """A label and its probability for each image."""
        return [Prediction(LABELS[int(p.argmax())], float(p.max()))
                for p in self.probabilities(images)]

    def predict_png(self, data: bytes) -> Prediction:
        """Predict one portrait given as PNG bytes."""
        return self.predict(from_png(data)[None])[0]
