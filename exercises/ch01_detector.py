"""Chapter 1 exercises: inference done right.

Fill in the three functions below, then grade them with

    pytest autograder/test_ch01_detector.py
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from vampire_detector.images import to_tensor
from vampire_detector.portraits import IMAGE_SIZE


def predict_proba(model: nn.Module, inputs: torch.Tensor, device: torch.device | None = None,
                  batch_size: int = 32) -> torch.Tensor:
    """Exercise 1.1: class probabilities for a batch of preprocessed portraits.

    ``inputs`` is a normalised ``(N, 3, H, W)`` tensor. Return an ``(N, 2)`` tensor of
    probabilities on the CPU, computed in chunks of at most ``batch_size`` on ``device``
    (default: wherever the model's weights are), the way production inference should run.
    """
    # Hint: four things: eval mode, no autograd, inputs on the model's device, chunks.
    raise NotImplementedError(
        "Exercise 1.1 is not implemented yet: write it in exercises/ch01_detector.py")


def latency_percentiles(fn: Callable[[], object], warmup: int = 5, iters: int = 50,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Exercise 1.2: the p50, p95 and p99 latency of ``fn`` in milliseconds.

    Call ``fn`` ``warmup`` times without timing it, then time each of ``iters`` calls on its
    own with ``clock`` (which returns seconds). Return ``{"p50": ..., "p95": ..., "p99": ...}``.
    """
    # Hint: np.percentile turns a list of samples into any percentile.
    raise NotImplementedError(
        "Exercise 1.2 is not implemented yet: write it in exercises/ch01_detector.py")


def preprocess_upload(data: bytes) -> torch.Tensor:
    """Exercise 1.3: turn uploaded image bytes into the model's ``(1, 3, 64, 64)`` input.

    Accept any image format Pillow reads, in any colour mode and size, and reproduce exactly the
    preprocessing the model was trained with. Raise ``ValueError`` with a message saying what is
    wrong when the bytes are empty, not an image, or a damaged image.
    """
    # Hint: Image.open reads only the header; image.load() finds truncated files.
    raise NotImplementedError(
        "Exercise 1.3 is not implemented yet: write it in exercises/ch01_detector.py")
