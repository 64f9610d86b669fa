"""Chapter 4 exercises: ONNX and ONNX Runtime.

Fill in the functions and the class below, then grade them with

    pytest autograder/test_ch04_onnx.py
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.export import Dim

from vampire_detector.images import from_png
from vampire_detector.portraits import IMAGE_SIZE, LABELS
from vampire_detector.predictor import Prediction
from vampire_detector.tensors import to_batch


def export_with_dynamic_batch(model: nn.Module, path: str | Path,
                              image_size: int = IMAGE_SIZE) -> Path:
    """Exercise 4.1: export ``model`` to ONNX at ``path`` with a dynamic batch axis.

    Use the torch.export-based exporter (``dynamo=True``). Name the input ``"images"`` and the
    output ``"logits"``, make axis 0 of the input dynamic so that any batch size runs, export
    the model's inference behaviour, write the file, check it with ``onnx.checker`` and return
    the path as a ``Path``.
    """
    # Hint: dynamic_shapes takes one entry per input: ({0: Dim("batch")},) here.
    # Hint: an example batch of 1 invites the exporter to treat the batch size as a constant.
    raise NotImplementedError(
        "Exercise 4.1 is not implemented yet: write it in exercises/ch04_onnx.py")


def make_session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """Exercise 4.2: an ONNX Runtime session for the model at ``path``, tuned for the CPU.

    Run on the ``CPUExecutionProvider`` with ``threads`` intra-op threads and every graph
    optimisation enabled. When ``path`` does not exist, raise ``FileNotFoundError`` with a
    message that names the missing file.
    """
    # Hint: ort.SessionOptions has intra_op_num_threads and graph_optimization_level.
    raise NotImplementedError(
        "Exercise 4.2 is not implemented yet: write it in exercises/ch04_onnx.py")


class BorderDetector:
    """Exercise 4.3: the eager ``Detector``'s API, backed by an ONNX Runtime session.

    The checkpoint sends RGB ``uint8`` images ``(N, H, W, 3)``; the exported model expects
    exactly the preprocessing it was trained with. Keep the session in ``self.session``.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        # Hint: your make_session from Exercise 4.2 does the work.
        raise NotImplementedError(
            "Exercise 4.3 is not implemented yet: write it in exercises/ch04_onnx.py")

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities, a float32 array ``(N, 2)`` whose rows sum to 1."""
        # Hint: vampire_detector.images is the one definition of the preprocessing.
        raise NotImplementedError(
            "Exercise 4.3 is not implemented yet: write it in exercises/ch04_onnx.py")

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """A ``Prediction(label, probability)`` for each image, labels from ``LABELS``."""
        raise NotImplementedError(
            "Exercise 4.3 is not implemented yet: write it in exercises/ch04_onnx.py")

    def predict_png(self, data: bytes) -> Prediction:
        """The prediction for one portrait given as PNG bytes."""
        raise NotImplementedError(
            "Exercise 4.3 is not implemented yet: write it in exercises/ch04_onnx.py")


@dataclass(frozen=True)
class ParityReport:
    """The largest absolute logit difference per batch size, and the worst of them."""

    errors: dict[int, float]
    worst_batch: int
    worst_error: float
    atol: float

    @property
    def ok(self) -> bool:
        return self.worst_error <= self.atol


def parity_report(model: nn.Module, session: ort.InferenceSession,
                  batch_sizes: Sequence[int] = (1, 8, 32), image_size: int = IMAGE_SIZE,
                  atol: float = 1e-4, seed: int = 0) -> ParityReport:
    """Exercise 4.4: compare the eager ``model`` with the exported one in ``session``.

    For each batch size, draw a batch of random normal inputs ``(n, 3, image_size, image_size)``
    (seeded with ``seed``), run it through the model in eval mode without autograd and through
    the session, and record the largest absolute difference between the two sets of logits.
    Return a ``ParityReport`` with those errors keyed by batch size, the batch size where the
    error was largest, that error, and ``atol``.
    """
    # Hint: session.get_inputs()[0].name is the name the session wants its input under.
    raise NotImplementedError(
        "Exercise 4.4 is not implemented yet: write it in exercises/ch04_onnx.py")
