"""The service on a laptop: every runtime, and the committed weights converted at start (Chapter 6).

The shipped service (``vampire_detector.service``) runs ONNX files with ONNX Runtime and never
imports PyTorch, so its image stays small. In the chapters, the tests and ``make serve`` the
same app also runs eager PyTorch and TorchScript, and with no model file it converts the
committed VampireNet into a temporary folder, so trying it needs no model store. This module
adds those loaders around the same ``create_app``:

    uvicorn --factory vampire_detector.torch_serving:create_app
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch
from fastapi import FastAPI

from vampire_detector.detector import Detector
from vampire_detector.onnx_export import export_onnx
from vampire_detector.predictor import Predictor
from vampire_detector.service import app as service_app
from vampire_detector.service.runtimes import LoadedModel, load_predictor, model_version
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.weights import load_model, weights_path

CPU = torch.device("cpu")


def convert_committed(settings: ServiceSettings, folder: Path) -> Path:
    """The committed VampireNet, converted for ``settings.runtime`` into ``folder``."""
    model = load_model("vampirenet", device=CPU)
    if settings.runtime == "onnx":
        return export_onnx(model, folder / "vampirenet.onnx", image_size=settings.image_size)
    example = torch.zeros(2, 3, settings.image_size, settings.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, example)
    path = folder / "vampirenet.ts.pt"
    traced.save(str(path))
    return path


def torch_predictor(settings: ServiceSettings, path: Path | None) -> Predictor:
    """Eager weights (``path`` None: the committed ones) or a TorchScript file, on the CPU."""
    torch.set_num_threads(settings.threads)
    size = settings.max_batch_size
    if settings.runtime == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return Detector(torch.jit.load(str(path), map_location=CPU), CPU, size)
    return Detector(load_model(settings.arch, path=path, device=CPU), CPU, size)


def load_any(settings: ServiceSettings) -> LoadedModel:
    """What ``settings`` ask for, with any runtime; the shipped loader where it suffices."""
    if settings.model_path is None and settings.runtime != "eager":
        # The runtimes read the whole file at load time, so the folder can go right after.
        with tempfile.TemporaryDirectory(prefix="vampire-service-") as folder:
            converted = convert_committed(settings, Path(folder))
            return load_any(settings.model_copy(update={"model_path": converted}))
    if settings.runtime == "onnx":
        return load_predictor(settings)
    source = settings.model_path or weights_path(settings.arch)
    return LoadedModel(torch_predictor(settings, settings.model_path),
                       model_version(settings, source))


def create_app(settings: ServiceSettings | None = None, **options) -> FastAPI:
    """The service of ``vampire_detector.service.app``, loading models with ``load_any``.

    A ``loader`` passed in (a test's fake model) takes its place.
    """
    options.setdefault("loader", load_any)
    return service_app.create_app(settings, **options)
