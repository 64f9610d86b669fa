"""Pixels in and out: PNG bytes, and the one preprocessing every runtime must reproduce.

The model was trained on ``normalize``'s output. Any other path to the model (an ONNX session, a
web service, a Lambda handler) must turn pixels into exactly the same numbers, or its accuracy
silently drops. Keep this module the single definition of that transform. It is written in NumPy
so that an ONNX-only deployment, with no PyTorch installed, can use it too; ``tensors.to_batch``
wraps the result in a tensor for PyTorch models. Introduced in Chapter 1.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Per-channel statistics of the clean training portraits (tests/test_images.py re-measures them).
MEAN = (0.356, 0.334, 0.318)
STD = (0.213, 0.209, 0.212)


def encode(image: np.ndarray | Image.Image, fmt: str = "PNG", mode: str | None = None) -> bytes:
    """Encode an RGB ``uint8`` array (or a PIL image) as ``fmt`` bytes, in colour ``mode``."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def to_png(image: np.ndarray | Image.Image) -> bytes:
    """Encode an RGB ``uint8`` array (or a PIL image) as PNG bytes."""
    return encode(image, "PNG")


def from_png(data: bytes) -> np.ndarray:
    """Decode trusted image bytes (our own PNGs) into an RGB ``uint8`` array.

    Bytes from strangers need more care (size limits, bombs, truncation): the serving code
    validates before it calls this.
    """
    with Image.open(io.BytesIO(data)) as image:
        return np.array(image.convert("RGB"))


def normalize(images: np.ndarray) -> np.ndarray:
    """RGB ``uint8`` images ``(N, H, W, 3)`` to the model's normalised ``float32 (N, 3, H, W)``."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} "
                         f"{images.shape}")
    batch = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    mean = np.array(MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((batch - mean) / std)
