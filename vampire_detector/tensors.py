"""Portraits as PyTorch tensors: ``images.normalize`` for eager and TorchScript models (Chapter 1).

Kept apart from ``images`` so that the NumPy preprocessing, which the ONNX-only service uses,
never pulls PyTorch in.
"""

from __future__ import annotations

import numpy as np
import torch

from vampire_detector.images import normalize


def to_batch(images: np.ndarray) -> torch.Tensor:
    """RGB ``uint8`` images ``(N, H, W, 3)`` to the model's normalised ``float32 (N, 3, H, W)``."""
    return torch.from_numpy(normalize(images))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """One RGB ``uint8`` image ``(H, W, 3)`` to a normalised ``float32 (3, H, W)`` tensor."""
    return to_batch(image[None])[0]
