"""Which model the service runs, and on what: eager PyTorch, TorchScript or ONNX Runtime.

Every runtime is wrapped in a ``Predictor`` (``vampire_detector.predictor``), so the routes and
the batcher never know which one is underneath, and every runtime gets exactly the training
preprocessing. With no model file configured, the service serves the committed VampireNet:
as it is for eager, or converted at startup into a temporary folder for the other runtimes, so
``make serve`` needs no model store.

PyTorch is imported only where a branch needs it: a serving image that runs an ONNX file needs
ONNX Runtime alone, and is gigabytes smaller.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from vampire_detector.ort_detector import OrtDetector
from vampire_detector.predictor import Predictor
from vampire_detector.service.settings import ServiceSettings


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    version: str  # e.g. "vampirenet-onnx-3f2a9c1b": which file, run how


def file_digest(path: Path) -> str:
    """The first 8 hex digits of the file's SHA-256: two files with one name stay distinct."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def _default_file(settings: ServiceSettings, folder: Path) -> Path:
    """The committed VampireNet, converted for ``settings.runtime`` into ``folder``."""
    import torch

    from vampire_detector.onnx_export import export_onnx
    from vampire_detector.weights import load_model

    model = load_model("vampirenet", device=torch.device("cpu"))
    if settings.runtime == "onnx":
        return export_onnx(model, folder / "vampirenet.onnx", image_size=settings.image_size)
    example = torch.zeros(2, 3, settings.image_size, settings.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, example)
    path = folder / "vampirenet.ts.pt"
    traced.save(str(path))
    return path


def _predictor(settings: ServiceSettings, path: Path | None) -> Predictor:
    size = settings.max_batch_size
    if settings.runtime == "onnx":
        return OrtDetector(path, threads=settings.threads, batch_size=size)
    import torch

    from vampire_detector.detector import Detector
    from vampire_detector.weights import load_model

    cpu = torch.device("cpu")
    torch.set_num_threads(settings.threads)
    if settings.runtime == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return Detector(torch.jit.load(str(path), map_location=cpu), cpu, size)
    return Detector(load_model(settings.arch, path=path, device=cpu), cpu, size)


def load_predictor(settings: ServiceSettings) -> LoadedModel:
    """The predictor that ``settings`` ask for, on the CPU, with its version string."""
    if settings.model_path is None and settings.runtime != "eager":
        # The runtimes read the whole file at load time, so the folder can go right after.
        with tempfile.TemporaryDirectory(prefix="vampire-service-") as folder:
            converted = _default_file(settings, Path(folder))
            return LoadedModel(_predictor(settings, converted), _version(settings, converted))
    source = settings.model_path
    if source is None:
        from vampire_detector.weights import weights_path

        source = weights_path(settings.arch)
    return LoadedModel(_predictor(settings, settings.model_path), _version(settings, source))


def _version(settings: ServiceSettings, path: Path) -> str:
    name = settings.arch if settings.runtime == "eager" else path.name.split(".")[0]
    return settings.model_version or f"{name}-{settings.runtime}-{file_digest(path)}"
