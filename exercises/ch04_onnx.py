"""Chapter 4 exercises: ONNX and ONNX Runtime.

The border's blacksmith wants one file that takes the camera's pixels exactly as they arrive and
needs no Python preprocessing. Fill in the classes and functions below, then grade them with

    pytest autograder/test_ch04_onnx.py
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.export import Dim

from vampire_detector.images import MEAN, STD, from_png
from vampire_detector.portraits import IMAGE_SIZE, LABELS
from vampire_detector.predictor import Prediction

CPU = "CPUExecutionProvider"


class BorderModel(nn.Module):
    """Exercise 4.1: ``model`` behind the border's own input: raw pixels in, logits out.

    ``forward`` takes the checkpoint's RGB ``uint8`` images ``(N, H, W, 3)`` exactly as they
    arrive and does in torch what ``vampire_detector.images.normalize`` does in NumPy: channels
    first, pixels scaled to ``[0, 1]``, then ``(x - MEAN) / STD`` per channel. Then it calls
    ``model``. Exported, the graph carries the preprocessing with it.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        # Hint: a buffer (register_buffer) is exported as a constant of the graph.
        raise NotImplementedError(
            "Exercise 4.1 is not implemented yet: write it in exercises/ch04_onnx.py")

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Hint: (N, H, W, 3) to (N, 3, H, W) moves axes: permute, not reshape or view.
        raise NotImplementedError(
            "Exercise 4.1 is not implemented yet: write it in exercises/ch04_onnx.py")


def export_border_model(model: nn.Module, path: str | Path,
                        image_size: int = IMAGE_SIZE) -> Path:
    """Exercise 4.1: export ``BorderModel(model)`` to ONNX at ``path``, for any batch size.

    Use the torch.export-based exporter (``dynamo=True``). The graph's one input, named
    ``"pixels"``, is ``uint8`` of shape ``(batch, image_size, image_size, 3)`` with axis 0
    dynamic; its one output is named ``"logits"``. ``model`` may arrive in training mode: export
    its inference behaviour. Write the file, check it with ``onnx.checker`` and return the path
    as a ``Path``.
    """
    # Hint: the example input fixes the input's dtype: torch.randint(..., dtype=torch.uint8).
    # Hint: dynamic_shapes takes one entry per input: ({0: Dim("batch")},) here.
    raise NotImplementedError(
        "Exercise 4.1 is not implemented yet: write it in exercises/ch04_onnx.py")


def make_session(path: str | Path, threads: int = 1,
                 providers: Sequence[str] = (CPU,)) -> ort.InferenceSession:
    """Exercise 4.2: a session on the best execution providers this machine has.

    ``providers`` names execution providers in order of preference. The session runs on those
    that this onnxruntime build has, in that order, always followed by ``CPUExecutionProvider``
    as the last resort. For each preferred provider the build lacks, issue a ``RuntimeWarning``
    that names it: the checkpoint may fall back to the CPU, but never silently. A name that no
    onnxruntime build knows is a typo: raise ``ValueError`` naming it. When ``path`` does not
    exist, raise ``FileNotFoundError`` naming the file.

    Use ``threads`` intra-op threads and every graph optimisation, and keep idle threads from
    spinning (the session config entry ``"session.intra_op.allow_spinning"`` set to ``"0"``):
    the checkpoint's machine is shared, and a spinning thread burns a core it is not using.
    """
    # Hint: ort.get_all_providers() names every provider there is; ort.get_available_providers()
    # the ones this build has.
    # Hint: options.add_session_config_entry(key, value) sets an entry.
    raise NotImplementedError(
        "Exercise 4.2 is not implemented yet: write it in exercises/ch04_onnx.py")


class BorderDetector:
    """Exercise 4.3: the eager ``Detector``'s API over the border model of Exercise 4.1.

    The model at ``path`` takes the checkpoint's pixels as they arrive (``uint8``, ``(N, H, W,
    3)``) and does its own preprocessing, so the detector feeds them to the session unchanged.
    Before running, check the images against the input the model declares (read its dtype, height
    and width from the session, never assume them): anything else raises ``ValueError`` that says
    what the model takes, instead of ONNX Runtime's own error. Keep the session in
    ``self.session``.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        # Hint: your make_session from Exercise 4.2 does the work.
        # Hint: self.session.get_inputs()[0] has the input's .name, .type and .shape.
        raise NotImplementedError(
            "Exercise 4.3 is not implemented yet: write it in exercises/ch04_onnx.py")

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities, a float32 array ``(N, 2)`` whose rows sum to 1."""
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

    ``session`` runs a float model that takes normalised ``(n, 3, image_size, image_size)``
    batches. For each batch size, draw a batch of random normal inputs of that shape (seeded
    with ``seed``), run it through the model in eval mode without autograd and through the
    session, and record the largest absolute difference between the two sets of logits. Return
    a ``ParityReport`` with those errors keyed by batch size, the batch size where the error was
    largest, that error, and ``atol``.
    """
    # Hint: session.get_inputs()[0].name is the name the session wants its input under.
    raise NotImplementedError(
        "Exercise 4.4 is not implemented yet: write it in exercises/ch04_onnx.py")
