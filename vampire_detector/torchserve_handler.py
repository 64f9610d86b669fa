"""VampireNet as a TorchServe handler: preprocess, inference, postprocess over a batch.

Introduced in Chapter 14.

TorchServe's Java frontend collects requests into a batch (up to ``batch_size``, waiting at most
``max_batch_delay`` ms) and hands the batch to a Python worker as a list of dicts, one per
request: the raw body under ``"body"`` or ``"data"``, or each multipart field under its own name.
The worker calls ``handle(batch, context)`` and expects one answer per request, in order.

The steps are the course's own: ``images`` decodes and normalises exactly as training did and
``tensors`` wraps the result for PyTorch, so TorchServe sees the same numbers as the course's
service. A request whose bytes are not a portrait gets its own 4xx (``context.
set_response_status``) while the rest of its batch is answered normally: one bad upload must not
fail thirty-one good ones.

The archived file may also be an ONNX file (``.onnx``, e.g. the production INT8 ResNet-18):
the handler then runs it with ONNX Runtime (``ort_detector``) instead of eager PyTorch, with the
same decoding, so that every server of Chapter 14 can run the same model file.

This module needs no TorchServe to import (the tests drive it with stand-in contexts); the
archive names its ``handle`` function as the entry point (``--handler
torchserve_handler.py:handle``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import IMAGE_SIZE, LABELS
from vampire_detector.predictor import softmax
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

FIELDS = ("data", "body", "image")  # raw body, or the multipart field the course's clients send
MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096  # refuse decompression bombs from the header, before decoding


@dataclass(frozen=True)
class Refusal:
    """Why one request of a batch gets no prediction: an HTTP status and a reason."""

    status: int
    code: str
    message: str

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def request_bytes(request: Any) -> bytes | Refusal:
    """The image bytes of one request dict, or why there are none."""
    if not isinstance(request, dict):
        return Refusal(400, "malformed", "the request carried no fields")
    for name in FIELDS:
        value = request.get(name)
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if value is not None:  # TorchServe decodes a JSON body to a dict or list
            return Refusal(415, "unsupported_media_type",
                           "send the image bytes (a PNG, JPEG or WebP), not JSON")
    return Refusal(400, "no_image", f"no image under any of {', '.join(FIELDS)}")


def decode(data: bytes, side: int = IMAGE_SIZE) -> np.ndarray | Refusal:
    """Untrusted bytes to one RGB ``uint8`` portrait ``(side, side, 3)``, or a refusal."""
    if not data:
        return Refusal(400, "empty", "the upload is empty")
    if len(data) > MAX_BYTES:
        return Refusal(413, "too_large", f"send at most {MAX_BYTES} bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in {"PNG", "JPEG", "WEBP"}:
                return Refusal(415, "unsupported_media_type",
                               f"send a PNG, JPEG or WebP image, not {image.format}")
            if image.width * image.height > MAX_PIXELS:
                return Refusal(413, "too_many_pixels", "the image declares too many pixels")
            image.load()
            rgb = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return Refusal(422, "not_an_image", "the bytes are not a readable image")
    if rgb.size != (side, side):  # the centred square, as the course's service does
        rgb = ImageOps.fit(rgb, (side, side), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


Probabilities = Callable[[np.ndarray], np.ndarray]  # uint8 (N, H, W, 3) -> (N, 2)


def load_probabilities(weights: Path, threads: int = 1) -> Probabilities:
    """The model in ``weights`` as one function from portraits to class probabilities: an ONNX
    file runs in ONNX Runtime, a ``.pt`` file (its notes name the architecture) in eager
    PyTorch. The other servers of Chapter 14 load their model through this function too."""
    if weights.suffix == ".onnx":
        return OrtDetector(weights, threads=threads).probabilities
    notes = weights.with_suffix(".json")
    arch = json.loads(notes.read_text())["config"]["arch"] if notes.exists() else "vampirenet"
    torch.set_num_threads(threads)
    model = load_model(arch, path=weights, device=torch.device("cpu"))

    @torch.inference_mode()
    def probabilities(images: np.ndarray) -> np.ndarray:
        return softmax(model(to_batch(images)).numpy())

    return probabilities


def label_of(probabilities: np.ndarray) -> dict[str, Any]:
    """The JSON answer for one portrait's class probabilities."""
    return {"label": LABELS[int(probabilities.argmax())],
            "probability": float(probabilities.max())}


class VampireHandler:
    """TorchServe's three steps for VampireNet; ``handle`` ties them together."""

    def __init__(self) -> None:
        self.probabilities: Probabilities | None = None
        self.initialized = False

    def initialize(self, context: Any) -> None:
        """Load the archived model: ``model_dir`` and the manifest come from TorchServe."""
        model_dir = Path(context.system_properties["model_dir"])
        weights = model_dir / context.manifest["model"]["serializedFile"]
        self.probabilities = load_probabilities(weights,
                                                int(os.environ.get("VAMPIRE_THREADS", "1")))
        self.initialized = True

    def preprocess(self, requests: list[Any]) -> tuple[np.ndarray | None, list[Refusal | None]]:
        """The good portraits as one ``uint8`` batch, and a refusal (or None) per request."""
        images, refusals = [], []
        for request in requests:
            data = request_bytes(request)
            image = decode(data) if isinstance(data, bytes) else data
            if isinstance(image, Refusal):
                refusals.append(image)
            else:
                refusals.append(None)
                images.append(image)
        return (np.stack(images) if images else None), refusals

    def inference(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for a batch of portraits, in one model call."""
        if self.probabilities is None:
            raise RuntimeError("initialize() must load the model before inference")
        return self.probabilities(batch)

    def postprocess(self, probabilities: np.ndarray | None,
                    refusals: list[Refusal | None]) -> list[dict[str, Any]]:
        """One JSON-ready answer per request, in request order."""
        answers, good = [], iter(probabilities if probabilities is not None else [])
        for refusal in refusals:
            answers.append(refusal.body() if refusal is not None else label_of(next(good)))
        return answers

    def handle(self, requests: list[Any], context: Any) -> list[dict[str, Any]]:
        batch, refusals = self.preprocess(requests)
        probabilities = self.inference(batch) if batch is not None else None
        for index, refusal in enumerate(refusals):
            if refusal is not None and context is not None:
                context.set_response_status(refusal.status, refusal.message, index)
        return self.postprocess(probabilities, refusals)


_service = VampireHandler()


def handle(data: list[Any] | None, context: Any) -> list[dict[str, Any]] | None:
    """TorchServe's entry point: called once with ``data=None`` to load, then per batch."""
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
