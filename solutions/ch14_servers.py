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
        # BEGIN SOLUTION
        model_dir = Path(context.system_properties["model_dir"])
        weights = model_dir / context.manifest["model"]["serializedFile"]
        self.model = load_model("vampirenet", path=weights, device=CPU)
        # END SOLUTION

    def preprocess(self, requests: list[dict]) -> tuple[torch.Tensor | None,
                                                          list[ClientError | None]]:
        """The good portraits as one normalised batch, and an error (or None) per request."""
        # BEGIN SOLUTION
        images, errors = [], []
        for index, request in enumerate(requests):
            try:
                payload = request.get("data") if request.get("data") is not None \
                    else request.get("body")
                if isinstance(payload, (bytes, bytearray)):
                    data = bytes(payload)
                elif isinstance(payload, dict):
                    data = b64_image(payload, f"request {index}")
                else:
                    raise ClientError(400, "send the image under data or body")
                images.append(decode_portrait(data))
                errors.append(None)
            except ClientError as error:
                errors.append(error)
        # Hint: tensors.to_batch normalises exactly as training did.
        return (to_batch(np.stack(images)) if images else None), errors
        # END SOLUTION

    def inference(self, batch: torch.Tensor) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for the batch, in one model call."""
        # BEGIN SOLUTION
        with torch.inference_mode():
            return softmax(self.model(batch).numpy())
        # END SOLUTION

    def postprocess(self, probabilities: np.ndarray | None,
                    errors: list[ClientError | None]) -> list[dict[str, Any]]:
        # BEGIN SOLUTION
        rows = iter(probabilities if probabilities is not None else [])
        out = []
        for error in errors:
            if error is None:
                row = next(rows)
                best = int(np.argmax(row))
                out.append({"label": LABELS[best], "probability": float(row[best])})
            else:
                out.append({"error": error.message})
        return out
        # END SOLUTION

    def handle(self, requests: list[dict], context: Any) -> list[dict[str, Any]]:
        # BEGIN SOLUTION
        batch, errors = self.preprocess(requests)
        probabilities = self.inference(batch) if batch is not None else None
        for index, error in enumerate(errors):
            if error is not None:
                context.set_response_status(error.status, error.message, index)
        return self.postprocess(probabilities, errors)
        # END SOLUTION


# Exercise 14.2: SageMaker's PyTorch inference functions (an ``inference.py``).
IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")


def model_fn(model_dir: str) -> torch.nn.Module:
    """Load VampireNet from ``model_dir/vampirenet.pt`` (where SageMaker unpacked model.tar.gz)."""
    # BEGIN SOLUTION
    return load_model("vampirenet", path=Path(model_dir) / "vampirenet.pt", device=CPU)
    # END SOLUTION


def input_fn(request_body: bytes, content_type: str) -> torch.Tensor:
    """The request as a normalised batch.

    One image for ``image/png``, ``image/jpeg`` or ``application/x-image``; several for
    ``application/json`` ``{"instances": [{"b64": ...}, ...]}``. ClientError: 415 for another
    content type, 400 for malformed JSON or instances (or none), 400/422 for bad image bytes.
    """
    # BEGIN SOLUTION
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in IMAGE_TYPES:
        return to_batch(decode_portrait(request_body)[None])
    if kind != "application/json":
        raise ClientError(415, f"send {', '.join(IMAGE_TYPES)} or application/json, not "
                          f"{kind or 'an untyped body'}")
    try:
        payload = json.loads(request_body.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ClientError(400, "the body is not JSON") from error
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise ClientError(400, 'send {"instances": [{"b64": ...}, ...]} with at least one')
    images = [decode_portrait(b64_image(item, f"instances[{i}]"))
              for i, item in enumerate(instances)]
    return to_batch(np.stack(images))
    # END SOLUTION


def predict_fn(input_data: torch.Tensor, model: torch.nn.Module) -> np.ndarray:
    """Class probabilities ``(N, 2)``, without autograd."""
    # BEGIN SOLUTION
    with torch.inference_mode():
        return softmax(model(input_data).numpy())
    # END SOLUTION


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    """``(body, content_type)``: JSON ``{"predictions": [{"label", "probability"}, ...]}``.

    ``accept`` may be ``application/json``, ``*/*`` or empty; anything else is a ClientError(406).
    """
    # BEGIN SOLUTION
    kinds = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    if not kinds & {"", "*/*", "application/json"}:
        raise ClientError(406, "this model answers application/json only")
    predictions = [{"label": LABELS[int(p.argmax())], "probability": float(p.max())}
                   for p in prediction]
    return json.dumps({"predictions": predictions}), "application/json"
    # END SOLUTION


def parse_vertex_request(body: bytes, max_instances: int = 16) -> tuple[list[bytes], float]:
    """Exercise 14.3: the images and the decision threshold of a Vertex AI predict request.

    The body is JSON ``{"instances": [{"b64": ...}, ...], "parameters": {"threshold": t}}``;
    ``parameters`` and its ``threshold`` are optional (0.5). ClientError(400) for a body that is
    not such JSON, no instances, an instance without a valid ``b64`` string, or a threshold that
    is not a number strictly between 0 and 1; ClientError(413) for more than ``max_instances``.
    """
    # BEGIN SOLUTION
    try:
        payload = json.loads(body.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ClientError(400, "the body is not JSON") from error
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise ClientError(400, 'send {"instances": [{"b64": ...}, ...]} with at least one')
    if len(instances) > max_instances:
        raise ClientError(413, f"send at most {max_instances} instances")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ClientError(400, "parameters must be an object")
    threshold = parameters.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0 < threshold < 1:
        raise ClientError(400, "parameters.threshold must be a number between 0 and 1")
    return [b64_image(item, f"instances[{i}]") for i, item in enumerate(instances)], \
        float(threshold)
    # END SOLUTION


def vertex_response(vampire_probabilities: list[float], threshold: float) -> dict[str, Any]:
    """``{"predictions": [{"label", "vampire_probability"}, ...]}`` in instance order; the label
    is "vampire" when the vampire probability is at least ``threshold``."""
    # BEGIN SOLUTION
    return {"predictions": [{"label": "vampire" if p >= threshold else "human",
                             "vampire_probability": float(p)}
                            for p in vampire_probabilities]}
    # END SOLUTION
