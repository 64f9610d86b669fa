"""Chapter 1 exercises: inference done right.

Fill in the three functions below, then grade them with

    pytest autograder/test_ch01_detector.py
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.tensors import to_tensor


def predict_proba(model: nn.Module, inputs: torch.Tensor, device: torch.device | None = None,
                  batch_size: int = 32) -> torch.Tensor:
    """Exercise 1.1: class probabilities for a batch of preprocessed portraits.

    ``inputs`` is a normalised ``(N, 3, H, W)`` tensor. Return an ``(N, 2)`` tensor of
    probabilities on the CPU, computed on ``device`` (default: wherever the model's weights are)
    in chunks of ``batch_size`` portraits (the last chunk may be smaller), the way production
    inference should run.
    """
    # Hint: four things: eval mode, no autograd, inputs on the model's device, chunks.
    raise NotImplementedError(
        "Exercise 1.1 is not implemented yet: write it in exercises/ch01_detector.py")


def choose_batch_size(samples_ms: dict[int, list[float]], budget_ms: float,
                      warmup: int = 3) -> int:
    """Exercise 1.2: the batch size with the highest throughput whose p95 fits the budget.

    ``samples_ms`` maps each batch size to the latencies of consecutive calls, in milliseconds,
    starting with ``warmup`` warm-up calls that must be ignored. A batch size fits when the p95
    of its remaining latencies (``numpy.percentile``'s default method) is at most ``budget_ms``;
    its throughput is the batch size divided by its median latency. When two batch sizes have
    the same throughput, the smaller wins: its callers wait less. Raise ``ValueError`` when no
    batch size fits, or when one has no latencies left after the warm-up.
    """
    # Hint: the mean hides the tail, and the largest batch is not always the fastest.
    raise NotImplementedError(
        "Exercise 1.2 is not implemented yet: write it in exercises/ch01_detector.py")


def preprocess_upload(data: bytes) -> torch.Tensor:
    """Exercise 1.3: turn uploaded image bytes into the model's ``(1, 3, 64, 64)`` input.

    Accept any image format Pillow reads, in any colour mode and size. Convert the picture to
    RGB; when it is not 64 x 64, cut out its centred square (never stretch a face) and resize
    that to 64 x 64 with bilinear resampling. Then reproduce exactly the preprocessing the model
    was trained with. Raise ``ValueError`` with a message saying what is wrong when the bytes are
    empty, not an image, or a damaged image.
    """
    # Hint: Image.open reads only the header; image.load() finds truncated files.
    # Hint: ImageOps.fit(image, size, method) crops the centred square and resizes it in one go.
    raise NotImplementedError(
        "Exercise 1.3 is not implemented yet: write it in exercises/ch01_detector.py")
