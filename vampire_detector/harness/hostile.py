"""Hostile uploads, made on purpose: what the service's validation and load tests throw at it.

Introduced in Chapter 6.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` x ``height`` pixels.

    Decoding it would allocate the claimed size: a decompression bomb's calling card, which the
    service must refuse from the header alone.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


@dataclass(frozen=True)
class BadUpload:
    """One kind of bad upload and the status the service must answer it with."""

    name: str
    data: bytes
    content_type: str
    expected_status: int


def bad_uploads(portrait_png: bytes, max_upload_bytes: int) -> list[BadUpload]:
    """The mixed load's bad inputs: each must get its 4xx, and never cost a good request."""
    return [
        BadUpload("a text file as an image", b"garlic, 3 stakes, holy water", "text/plain", 415),
        BadUpload("a truncated PNG", portrait_png[: len(portrait_png) // 2], "image/png", 422),
        BadUpload("an oversized body", b"\x00" * (max_upload_bytes + 1), "image/png", 413),
        BadUpload("a decompression bomb", png_claiming(100_000, 100_000), "image/png", 422),
    ]


def jpeg_with_scans(pixels: np.ndarray, extra_scans: int) -> bytes:
    """A progressive JPEG of ``pixels`` whose last scan is repeated ``extra_scans`` more times.

    Every decoder accepts it (a repeated refinement scan only warns), and every scan costs a
    pass over the whole image: thousands of tiny scans make a CPU bomb of a small file.
    """
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * extra_scans + data[end:]


def broken_exif() -> bytes:
    """EXIF that turns a portrait on its side and holds a text where a number belongs.

    Pillow reads it, but ``ImageOps.exif_transpose`` raises ``struct.error`` when it writes
    the metadata back: a phone-like upload that must not become a 500.
    """
    entries = [struct.pack(">HHII", 0x0112, 3, 1, 6 << 16),  # Orientation: rotate 90 degrees
               struct.pack(">HHI4s", 0x0117, 2, 4, b"Cam\x00")]  # StripByteCounts as text
    return (b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", len(entries))
            + b"".join(entries) + b"\x00\x00\x00\x00")


def with_exif(pixels: np.ndarray, fmt: str, exif: bytes) -> bytes:
    """``pixels`` encoded as ``fmt`` with the given EXIF block."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, exif=exif if fmt == "JPEG" else exif[6:])
    return buffer.getvalue()


def lossless_webp(side: int) -> bytes:
    """A blank ``side`` x ``side`` lossless WebP: under a kilobyte that decodes to megabytes."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side)).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def mpo(pixels: np.ndarray) -> bytes:
    """A JPEG with a second, smaller picture (MPF), as many phones save their photographs."""
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "MPO", save_all=True, append_images=[image.resize((32, 32))])
    return buffer.getvalue()
