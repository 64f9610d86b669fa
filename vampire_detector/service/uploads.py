"""Untrusted bytes in, one clean portrait out, or a clear refusal.

Introduced in Chapter 6.

Anything may arrive at the border: a photograph from a phone, a 16-bit scan, a text file named
``portrait.png``, half a PNG, or a tiny file that claims to be a 50,000 x 50,000 image and would
eat all memory when decoded (a decompression bomb). This module accepts what it can convert
honestly (grayscale, transparency, palettes, any size within limits: converted to RGB and
resized to the model's input) and refuses the rest with a ``ServiceError``: 413 for too many
bytes, 415 for a type the service does not read, 422 for bytes that are not a usable image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vampire_detector.service.errors import ServiceError
from vampire_detector.service.settings import ServiceSettings

# Declared content type -> the Pillow format the bytes must have.
PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
HIGH_BIT_DEPTH = {"I", "I;16", "I;16B", "I;16L", "F"}  # scientific images: no honest RGB


@dataclass(frozen=True)
class UploadLimits:
    """What an upload may be; the service builds it from its settings (``from_settings``)."""

    max_bytes: int
    max_pixels: int
    image_size: int  # the side of the square the model takes
    min_side: int = 16

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> UploadLimits:
        return cls(settings.max_upload_bytes, settings.max_pixels, settings.image_size)


def check_type(content_type: str | None) -> str:
    """The Pillow format for a declared content type, or 415."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in PILLOW_FORMATS:
        raise ServiceError(415, "unsupported_media_type",
                           f"send a PNG, JPEG or WebP image, not {media or 'an untyped file'}")
    return PILLOW_FORMATS[media]


def check_size(data: bytes, limits: UploadLimits) -> None:
    if len(data) > limits.max_bytes:
        raise ServiceError(413, "too_large",
                           f"images may be at most {limits.max_bytes:,} bytes")
    if not data:
        raise ServiceError(422, "empty", "the uploaded file is empty")


def open_image(data: bytes, expected: str, limits: UploadLimits) -> Image.Image:
    """Read the header only, and refuse what decoding would regret: wrong format, bombs."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(PILLOW_FORMATS.values()))
    except Image.DecompressionBombError as error:  # Pillow's own, far higher, limit
        raise ServiceError(422, "too_many_pixels", "the image claims more pixels than any "
                           "portrait has: a decompression bomb") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ServiceError(422, "undecodable",
                           "the file is not a PNG, JPEG or WebP image") from error
    if image.format != expected:
        raise ServiceError(415, "format_mismatch", f"the file was declared as {expected} but "
                           f"holds a {image.format} image")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ServiceError(422, "too_many_pixels", f"{width}x{height} is more than the "
                           f"{limits.max_pixels:,} pixels an image may have")
    if min(width, height) < limits.min_side:
        raise ServiceError(422, "too_small", f"{width}x{height} is too small: each side "
                           f"needs at least {limits.min_side} pixels")
    return image


def decode(image: Image.Image) -> Image.Image:
    """Decode every pixel now (``load``), so that truncated files fail here, not later."""
    try:
        image.load()
        image = ImageOps.exif_transpose(image)  # phones store portraits rotated
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ServiceError(422, "undecodable",
                           "the image is truncated or corrupt and cannot be decoded") from error
    if image.mode in HIGH_BIT_DEPTH:
        raise ServiceError(422, "unsupported_mode",
                           f"{image.mode} images (16-bit or float) are not portraits")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; transparent areas become black, as the portraits' backgrounds are dark."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_square(image: Image.Image, side: int) -> Image.Image:
    """The centred square of the image, resized to ``side`` pixels: faces keep their shape."""
    if image.size == (side, side):
        return image
    return ImageOps.fit(image, (side, side), Image.Resampling.BILINEAR)


def read_portrait(data: bytes, content_type: str | None, limits: UploadLimits) -> np.ndarray:
    """An RGB ``uint8`` array ``(size, size, 3)`` from uploaded bytes, or a ``ServiceError``."""
    check_size(data, limits)
    expected = check_type(content_type)
    with open_image(data, expected, limits) as image:
        pixels = to_square(to_rgb(decode(image)), limits.image_size)
        return np.asarray(pixels, dtype=np.uint8)
