"""Untrusted bytes in, one clean portrait out, or a clear refusal.

Introduced in Chapter 6.

Anything may arrive at the border: a photograph from a phone, a 16-bit scan, a text file named
``portrait.png``, half a PNG, or a tiny file that claims to be a 50,000 x 50,000 image and would
eat all memory when decoded (a decompression bomb). This module accepts what it can convert
honestly (grayscale, transparency, palettes, any size within limits: converted to RGB and
resized to the model's input) and refuses the rest with a ``ServiceError``: 413 for too many
bytes, 415 for a type the service does not read, 422 for bytes that are not a usable image.

Reading happens in two steps, so the caller can decide where the expensive one runs:
``open_portrait`` reads the header alone (cheap, whatever the file claims), and
``finish_portrait`` decodes the pixels, at reduced scale where the format allows. What a decode
costs depends on the size the header declares, not on the file's length: 700 bytes of lossless
WebP can declare 4096 x 4096 pixels, so ``decodes_inline`` asks both.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from vampire_detector.service.refusal import ServiceError

if TYPE_CHECKING:  # only a type here: Azure's scoring script uses this module without it
    from vampire_detector.service.settings import ServiceSettings

log = logging.getLogger("vampire_detector.service")

# Declared content type -> the format the bytes must have. A generic type (or a JPEG alias)
# is only a hint: the bytes themselves say what they are.
DECLARED_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG",
                    "image/pjpeg": "JPEG", "image/webp": "WEBP"}
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream"}
HIGH_BIT_DEPTH = {"I", "I;16", "I;16B", "I;16L", "F"}  # scientific images: no honest RGB
REDUCIBLE = {"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr"}  # modes whose pixels average honestly
INLINE_PIXELS = 256 * 256  # a decode this small costs less than a hop to a worker thread
INLINE_BYTES = 32_768


# The service's defaults (its settings start from them), for any other host of this module.
MAX_BYTES = 2_000_000
MAX_PIXELS = 4096 * 4096
MAX_JPEG_SCANS = 100  # a progressive JPEG has about ten; thousands are an attack


@dataclass(frozen=True)
class UploadLimits:
    """What an upload may be; the service builds it from its settings (``from_settings``)."""

    max_bytes: int
    max_pixels: int
    image_size: int  # the side of the square the model takes
    min_side: int = 16
    max_jpeg_scans: int = MAX_JPEG_SCANS

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> UploadLimits:
        return cls(settings.max_upload_bytes, settings.max_pixels, settings.image_size,
                   max_jpeg_scans=settings.max_jpeg_scans)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def check_type(content_type: str | None) -> str | None:
    """The format a declared content type promises, ``None`` for a generic type, or 415."""
    media = media_type(content_type)
    if media in GENERIC_TYPES:
        return None
    if media not in DECLARED_FORMATS:
        raise ServiceError(415, "unsupported_media_type",
                           f"send a PNG, JPEG or WebP image, not {media or 'an untyped file'}")
    return DECLARED_FORMATS[media]


def sniff(data: bytes) -> str | None:
    """The format the bytes' signature shows (PNG, JPEG or WEBP), or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):  # plain JPEG, and MPO: a phone's JPEG with extras
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_size(data: bytes, limits: UploadLimits) -> None:
    if len(data) > limits.max_bytes:
        raise ServiceError(413, "too_large",
                           f"images may be at most {limits.max_bytes:,} bytes")
    if not data:
        raise ServiceError(422, "empty", "the uploaded file is empty")


def identify(data: bytes, content_type: str | None) -> str:
    """The format to read the bytes as: sniffed from them, checked against the declared type."""
    promised, found = check_type(content_type), sniff(data)
    if found is None:
        if promised is None:
            raise ServiceError(415, "unsupported_media_type",
                               "the file is not a PNG, JPEG or WebP image")
        raise ServiceError(422, "undecodable", "the file is not a PNG, JPEG or WebP image")
    if promised is not None and found != promised:
        raise ServiceError(415, "format_mismatch", f"the file was declared as {promised} but "
                           f"holds a {found} image")
    return found


def open_portrait(data: bytes, content_type: str | None, limits: UploadLimits) -> Image.Image:
    """Read the header only, and refuse what decoding would regret: wrong format, bombs."""
    check_size(data, limits)
    found = identify(data, content_type)
    try:
        image = Image.open(io.BytesIO(data), formats=[found])
    except Image.DecompressionBombError as error:  # Pillow's own, far higher, limit
        raise ServiceError(422, "too_many_pixels", "the image claims more pixels than any "
                           "portrait has: a decompression bomb") from error
    except Exception as error:  # Pillow's plugins raise many kinds on crafted headers
        raise ServiceError(422, "undecodable",
                           "the file is not a PNG, JPEG or WebP image") from error
    width, height = image.size
    if width * height > limits.max_pixels:
        image.close()
        raise ServiceError(422, "too_many_pixels", f"{width}x{height} is more than the "
                           f"{limits.max_pixels:,} pixels an image may have")
    if min(width, height) < limits.min_side:
        image.close()
        raise ServiceError(422, "too_small", f"{width}x{height} is too small: each side "
                           f"needs at least {limits.min_side} pixels")
    return image


def decodes_inline(image: Image.Image, data: bytes) -> bool:
    """Whether decoding is cheap enough for the event loop: small in pixels *and* in bytes."""
    width, height = image.size
    return width * height <= INLINE_PIXELS and len(data) <= INLINE_BYTES


def count_jpeg_scans(data: bytes, stop_after: int) -> int:
    """How many scans (SOS markers) the first JPEG image in ``data`` has, up to ``stop_after``.

    Walks the marker segments by their lengths and skips each scan's entropy-coded data (where
    ``FF`` is followed by ``00`` or a restart marker), so bytes inside metadata, thumbnails or
    an MPO's second picture are never mistaken for markers.
    """
    scans, position, end = 0, 2, len(data)
    while position + 4 <= end and scans <= stop_after:
        if data[position] != 0xFF:
            break  # malformed: the decoder will say so
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
        if marker != 0xDA:
            continue
        scans += 1
        while True:  # skip the entropy-coded data up to the next real marker
            position = data.find(b"\xff", position)
            if position < 0 or position + 1 >= end:
                return scans
            following = data[position + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                position += 2
            elif following == 0xFF:
                position += 1
            else:
                break
    return scans


def check_scans(image: Image.Image, data: bytes, limits: UploadLimits) -> None:
    """Refuse a progressive JPEG whose scan count would make decoding a CPU bomb."""
    if image.format not in ("JPEG", "MPO"):
        return
    scans = count_jpeg_scans(data, limits.max_jpeg_scans)
    if scans > limits.max_jpeg_scans:
        raise ServiceError(422, "too_many_scans", f"the JPEG has more than "
                           f"{limits.max_jpeg_scans} scans; a portrait needs a dozen at most")


def upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phones store portraits rotated); ignore it if unreadable."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # orientation is a nicety: broken metadata is never a 5xx
        log.warning("ignored unreadable EXIF orientation", exc_info=True)
        return image


def decode(image: Image.Image, side: int = 0) -> Image.Image:
    """Decode every pixel now (``load``), so that truncated files fail here, not later.

    With ``side``, a JPEG decodes at 1/2, 1/4 or 1/8 scale (``draft``) while both sides stay at
    least ``2 * side``, and any image larger than that is shrunk by whole factors (``reduce``)
    before the conversions that copy it.
    """
    try:
        if side:
            image.draft(None, (2 * side, 2 * side))  # JPEG only; other formats ignore it
        image.load()
        factor = min(image.size) // (2 * side) if side else 1
        if factor >= 2 and image.mode in REDUCIBLE and "transparency" not in image.info:
            image = image.reduce(factor)
    except Image.DecompressionBombError as error:
        raise ServiceError(422, "too_many_pixels", "the image decodes to more pixels than it "
                           "declared") from error
    except Exception as error:  # truncated, corrupt, or crafted to break the decoder
        raise ServiceError(422, "undecodable",
                           "the image is truncated or corrupt and cannot be decoded") from error
    if image.mode in HIGH_BIT_DEPTH:
        raise ServiceError(422, "unsupported_mode",
                           f"{image.mode} images (16-bit or float) are not portraits")
    return upright(image)


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


def finish_portrait(image: Image.Image, data: bytes, limits: UploadLimits) -> np.ndarray:
    """Decode an opened upload to an RGB ``uint8`` array ``(size, size, 3)``: the costly step."""
    check_scans(image, data, limits)
    pixels = to_square(to_rgb(decode(image, limits.image_size)), limits.image_size)
    return np.asarray(pixels, dtype=np.uint8)


def read_portrait(data: bytes, content_type: str | None, limits: UploadLimits) -> np.ndarray:
    """An RGB ``uint8`` array ``(size, size, 3)`` from uploaded bytes, or a ``ServiceError``."""
    with open_portrait(data, content_type, limits) as image:
        return finish_portrait(image, data, limits)


def instances_of(body: bytes, most: int) -> list[bytes]:
    """The image bytes of a JSON request ``{"instances": [{"b64": ...}, ...]}``, Vertex AI's
    shape (Chapter 14), or a 400 (413 past ``most``) that says what is wrong with it."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ServiceError(400, "not_json", 'the body must be JSON: {"instances": '
                           '[{"b64": "..."}]}') from error
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise ServiceError(400, "no_instances", 'the body must be a JSON object with an '
                           '"instances" list')
    instances = payload["instances"]
    if not instances:
        raise ServiceError(400, "no_instances", "send at least one instance")
    if len(instances) > most:
        raise ServiceError(413, "too_many_instances", f"send at most {most} instances")
    images = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or not isinstance(instance.get("b64"), str):
            raise ServiceError(400, "bad_instance", f'instances[{index}] must be an object '
                               'with the image as a base64 string under "b64"')
        try:
            images.append(base64.b64decode(instance["b64"], validate=True))
        except (binascii.Error, ValueError) as error:
            raise ServiceError(400, "bad_base64", f"instances[{index}].b64 is not valid "
                               "base64") from error
    return images
