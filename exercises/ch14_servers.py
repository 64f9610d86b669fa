"""Chapter 14 exercises: roads not taken (TorchServe, SageMaker, Vertex AI).

Fill in the bodies below, then grade them with

    pytest autograder/test_ch14_servers.py
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from vampire_detector.portraits import IMAGE_SIZE, LABELS
from vampire_detector.predictor import softmax
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


class ClientError(Exception):
    """A request the caller must fix: an HTTP 4xx ``status`` and a ``message`` saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def decode_portrait(data: bytes) -> np.ndarray:
    """Image bytes to one RGB ``uint8`` portrait ``(64, 64, 3)``; ClientError if they are not."""
    if not data:
        raise ClientError(400, "the image is empty")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            rgb = opened.convert("RGB")  # convert() decodes every pixel, so errors show here
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ClientError(422, "the bytes are not a readable image") from error
    if rgb.size != (IMAGE_SIZE, IMAGE_SIZE):
        rgb = ImageOps.fit(rgb, (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def b64_image(value: Any, where: str) -> bytes:
    """The bytes of ``{"b64": "..."}``; ClientError(400) for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
        raise ClientError(400, f'{where} must be an object with a base64 string under "b64"')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise ClientError(400, f"{where}.b64 is not valid base64") from error


class VampireHandler:
    """Exercise 14.1: a TorchServe handler for VampireNet.

    TorchServe calls ``initialize(context)`` once, then ``handle(requests, context)`` for each
    batch: ``requests`` is a list of dicts, one per HTTP request. A request's image is under
    ``"data"`` or ``"body"``, either as bytes (a ``bytes`` or ``bytearray``) or, when the client
    sent JSON, as an already-decoded dict ``{"b64": "<base64 of the image>"}``.

    - ``initialize`` loads VampireNet's weights (``load_model``) from
      ``context.system_properties["model_dir"]`` joined with
      ``context.manifest["model"]["serializedFile"]``.
    - ``handle`` returns one answer per request, in order: ``{"label": ..., "probability": ...}``
      as ``Predictor.predict`` would give, with all good portraits of the batch in ONE model call.
    - A bad request (no image, empty or unreadable bytes, bad base64) gets
      ``context.set_response_status(status, message, index)`` with a 4xx and an answer
      ``{"error": message}``; the rest of the batch is still answered. Never raise for it.
    """

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None

    def initialize(self, context: Any) -> None:
        raise NotImplementedError(
            "Exercise 14.1 is not implemented yet: write it in exercises/ch14_servers.py")

    def preprocess(self, requests: list[dict]) -> tuple[torch.Tensor | None,
                                                          list[ClientError | None]]:
        """The good portraits as one normalised batch, and an error (or None) per request."""
        # Hint: tensors.to_batch normalises exactly as training did.
        raise NotImplementedError(
            "Exercise 14.1 is not implemented yet: write it in exercises/ch14_servers.py")

    def inference(self, batch: torch.Tensor) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for the batch, in one model call."""
        raise NotImplementedError(
            "Exercise 14.1 is not implemented yet: write it in exercises/ch14_servers.py")

    def postprocess(self, probabilities: np.ndarray | None,
                    errors: list[ClientError | None]) -> list[dict[str, Any]]:
        raise NotImplementedError(
            "Exercise 14.1 is not implemented yet: write it in exercises/ch14_servers.py")

    def handle(self, requests: list[dict], context: Any) -> list[dict[str, Any]]:
        raise NotImplementedError(
            "Exercise 14.1 is not implemented yet: write it in exercises/ch14_servers.py")


# Exercise 14.2: SageMaker's PyTorch inference functions (an ``inference.py``).
IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")


def model_fn(model_dir: str) -> torch.nn.Module:
    """Load VampireNet from ``model_dir/vampirenet.pt`` (where SageMaker unpacked model.tar.gz)."""
    raise NotImplementedError(
        "Exercise 14.2 is not implemented yet: write it in exercises/ch14_servers.py")


def input_fn(request_body: bytes, content_type: str) -> torch.Tensor:
    """The request as a normalised batch.

    One image for ``image/png``, ``image/jpeg`` or ``application/x-image``; several for
    ``application/json`` ``{"instances": [{"b64": ...}, ...]}``. ClientError: 415 for another
    content type, 400 for malformed JSON or instances (or none), 400/422 for bad image bytes.
    """
    raise NotImplementedError(
        "Exercise 14.2 is not implemented yet: write it in exercises/ch14_servers.py")


def predict_fn(input_data: torch.Tensor, model: torch.nn.Module) -> np.ndarray:
    """Class probabilities ``(N, 2)``, without autograd."""
    raise NotImplementedError(
        "Exercise 14.2 is not implemented yet: write it in exercises/ch14_servers.py")


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    """``(body, content_type)``: JSON ``{"predictions": [{"label", "probability"}, ...]}``.

    ``accept`` may be ``application/json``, ``*/*`` or empty; anything else is a ClientError(406).
    """
    raise NotImplementedError(
        "Exercise 14.2 is not implemented yet: write it in exercises/ch14_servers.py")


def parse_vertex_request(body: bytes, max_instances: int = 16) -> tuple[list[bytes], float]:
    """Exercise 14.3: the images and the decision threshold of a Vertex AI predict request.

    The body is JSON ``{"instances": [{"b64": ...}, ...], "parameters": {"threshold": t}}``;
    ``parameters`` and its ``threshold`` are optional (0.5). ClientError(400) for a body that is
    not such JSON, no instances, an instance without a valid ``b64`` string, or a threshold that
    is not a number strictly between 0 and 1; ClientError(413) for more than ``max_instances``.
    """
    raise NotImplementedError(
        "Exercise 14.3 is not implemented yet: write it in exercises/ch14_servers.py")


def vertex_response(vampire_probabilities: list[float], threshold: float) -> dict[str, Any]:
    """``{"predictions": [{"label", "vampire_probability"}, ...]}`` in instance order; the label
    is "vampire" when the vampire probability is at least ``threshold``."""
    raise NotImplementedError(
        "Exercise 14.3 is not implemented yet: write it in exercises/ch14_servers.py")
