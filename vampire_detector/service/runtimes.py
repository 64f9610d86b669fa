"""Which model the service runs: an ONNX file, with ONNX Runtime (Chapter 6).

Every runtime is wrapped in a ``Predictor`` (``vampire_detector.predictor``), so the routes and
the batcher never know which one is underneath, and every runtime gets exactly the training
preprocessing. The shipped service runs ONNX files only: an image with ONNX Runtime and no
PyTorch is gigabytes smaller. Eager PyTorch, TorchScript and the committed weights converted
at start are added, outside this package, by ``vampire_detector.torch_serving``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vampire_detector.ort_detector import CPU, OrtDetector
from vampire_detector.predictor import Predictor
from vampire_detector.service.settings import Provider, ServiceSettings

TORCH_HINT = ("the {runtime} runtime needs PyTorch, which the serving image leaves out: start "
              "vampire_detector.torch_serving:create_app instead")


# VAMPIRE_PROVIDER: "auto" lets ONNX Runtime use CUDA when it can and the CPU otherwise; a
# named provider must load, or the service does not start (a GPU pod that quietly serves on
# its CPU is slower, dearer and looks healthy).
PROVIDERS: dict[Provider, list[str] | None] = {"auto": None, "cpu": [CPU],
                                               "cuda": ["CUDAExecutionProvider"]}


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    version: str  # e.g. "vampirenet-onnx-3f2a9c1b": which file, run how


def file_digest(path: Path) -> str:
    """The first 8 hex digits of the file's SHA-256: two files with one name stay distinct."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def load_predictor(settings: ServiceSettings) -> LoadedModel:
    """The ONNX model that ``settings`` name, on their provider, with its version string."""
    if settings.runtime != "onnx":
        raise ValueError(TORCH_HINT.format(runtime=settings.runtime))
    if settings.model_path is None:
        raise ValueError("set VAMPIRE_MODEL_PATH to an .onnx file (export one with "
                         "vampire_detector.onnx_export.export_onnx)")
    predictor = OrtDetector(settings.model_path, threads=settings.threads,
                            batch_size=settings.max_batch_size,
                            providers=PROVIDERS[settings.provider])
    return LoadedModel(predictor, model_version(settings, settings.model_path))


def model_version(settings: ServiceSettings, path: Path) -> str:
    """``settings.model_version``, or which file runs how, e.g. ``vampirenet-onnx-3f2a9c1b``."""
    name = settings.arch if settings.runtime == "eager" else path.name.split(".")[0]
    return settings.model_version or f"{name}-{settings.runtime}-{file_digest(path)}"
