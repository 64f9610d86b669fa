"""The detector on ONNX Runtime: the eager ``Detector``'s API with no PyTorch model behind it.

Introduced in Chapter 4.

The border checkpoint sends raw images. The session only sees numbers, so the pixels must go
through exactly the preprocessing the model was trained with: this class uses
``vampire_detector.images.normalize``, the one definition of it, and never a copy. Nothing here
imports PyTorch, so a serving image with ONNX Runtime alone can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vampire_detector.images import normalize
from vampire_detector.paths import require_file
from vampire_detector.portraits import LABELS
from vampire_detector.predictor import Predictor, softmax

CPU = "CPUExecutionProvider"
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
OPTIMIZATION_LEVELS = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def pick_providers(wanted: Sequence[str] | None = None) -> list[str]:
    """Execution providers in order of preference, always ending with the CPU as a fallback.

    By default CUDA is used when this onnxruntime build has it (TensorRT builds an engine on
    first use, which takes minutes, so it is only used when asked for). A provider asked for by
    name that this build lacks is an error, not a silent fall back to the CPU.
    """
    available = ort.get_available_providers()
    if wanted is None:
        wanted = [name for name in ("CUDAExecutionProvider",) if name in available]
    missing = [name for name in wanted if name not in available]
    if missing:
        raise ValueError(f"onnxruntime {ort.__version__} here has no {', '.join(missing)}; "
                         f"available: {', '.join(available)}")
    return [*[name for name in wanted if name != CPU], CPU]


def session_options(threads: int | None = None, optimization: str = "all") -> ort.SessionOptions:
    """Options for one session: ``threads`` for intra-op parallelism (None: one per core)."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1 (or None for one per core), got {threads}")
    if optimization not in OPTIMIZATION_LEVELS:
        raise ValueError(f"unknown optimization level {optimization!r}; choose one of "
                         f"{', '.join(OPTIMIZATION_LEVELS)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0 lets onnxruntime use every core
    options.graph_optimization_level = OPTIMIZATION_LEVELS[optimization]
    return options


def load_session(path: str | Path, threads: int | None = None, optimization: str = "all",
                 providers: Sequence[str] | None = None) -> ort.InferenceSession:
    """An inference session for the ONNX file at ``path``, with a clear error when it is missing."""
    path = require_file(path)
    session = ort.InferenceSession(str(path), session_options(threads, optimization),
                                   providers=pick_providers(providers))
    require_loaded(session, providers or ())
    return session


def require_loaded(session: ort.InferenceSession, wanted: Sequence[str]) -> None:
    """Fail (``ValueError``, as for a provider this build lacks) when a provider asked for by
    name did not load.

    A GPU build of onnxruntime lists CUDA as available even where its libraries (CUDA, cuDNN)
    or the driver are missing; the session then prints an error and runs on the CPU. Asked for
    by name, that silent fall back becomes an error at start.
    """
    lost = [name for name in wanted if name not in session.get_providers()]
    if lost:
        raise ValueError(f"{', '.join(lost)} did not load, so the session would run on "
                         f"{', '.join(session.get_providers())}: onnxruntime's own error in "
                         f"the log names the missing library (onnxruntime-gpu {ort.__version__} "
                         "needs the CUDA and cuDNN versions it was built for, and a driver)")


class OrtDetector(Predictor):
    """An ONNX Runtime session fed in batches of at most ``batch_size``, like ``Detector``."""

    def __init__(self, path: str | Path, *, threads: int | None = None, batch_size: int = 64,
                 optimization: str = "all", providers: Sequence[str] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.session = load_session(path, threads, optimization, providers)
        self.batch_size = batch_size
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name
        self.image_size = model_input.shape[-1] if isinstance(model_input.shape[-1], int) else None

    def _check(self, images: np.ndarray) -> None:
        size = self.image_size
        if images.ndim == 4 and size is not None and images.shape[1:3] != (size, size):
            raise ValueError(f"this model takes {size}x{size} portraits, got images of "
                             f"{images.shape[1]}x{images.shape[2]}: resize them first")

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for RGB ``uint8`` images ``(N, H, W, 3)``."""
        if len(images) == 0:
            return np.empty((0, len(LABELS)), np.float32)
        self._check(images)
        chunks = [self.session.run(None, {self.input_name: normalize(
            images[i:i + self.batch_size])})[0]
            for i in range(0, len(images), self.batch_size)]
        return softmax(np.concatenate(chunks))
