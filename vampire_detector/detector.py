"""Inference done right: the eager detector that every later runtime imitates.

``Detector`` is the eager PyTorch runtime of ``predictor.Predictor``, the API of the course:
later runtimes (ONNX Runtime in Chapter 4, the web service) offer the same methods.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vampire_detector.device import pick_device
from vampire_detector.portraits import LABELS
from vampire_detector.predictor import Prediction, Predictor
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

__all__ = ["Detector", "Prediction", "Predictor"]  # Prediction and Predictor live in predictor


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
