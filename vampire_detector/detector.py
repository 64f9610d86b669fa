"""Inference done right: the eager detector that every later runtime imitates.

``Predictor`` is the API of the course: every runtime (eager PyTorch here, ONNX Runtime in
Chapter 4, and those after it) supplies ``probabilities`` and inherits ``predict`` and
``predict_png``, so the border checkpoint never cares what runs underneath.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vampire_detector.device import pick_device
from vampire_detector.images import from_png, to_batch
from vampire_detector.portraits import LABELS
from vampire_detector.weights import load_model


@dataclass(frozen=True)
class Prediction:
    label: str  # "human" or "vampire"
    probability: float  # of ``label``, in [0.5, 1]


class Predictor(ABC):
    """The prediction API of the course: a runtime supplies ``probabilities``, the rest follows."""

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


class Detector(Predictor):
    """A model in eval mode on one device, fed in batches of at most ``batch_size``."""

    def __init__(self, model: nn.Module, device: torch.device | None = None,
                 batch_size: int = 64):
        self.device = device or pick_device()
        self.model = model.eval().to(self.device)
        self.batch_size = batch_size

    @classmethod
    def from_weights(cls, arch: str = "vampirenet", device: torch.device | None = None,
                     batch_size: int = 64) -> Detector:
        device = device or pick_device()
        return cls(load_model(arch, device=device), device, batch_size)

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for RGB ``uint8`` images ``(N, H, W, 3)``."""
        chunks = [
            torch.softmax(self.model(to_batch(images[i:i + self.batch_size]).to(self.device)), 1)
            .cpu() for i in range(0, len(images), self.batch_size)
        ]
        return torch.cat(chunks).numpy() if chunks else np.empty((0, len(LABELS)), np.float32)
