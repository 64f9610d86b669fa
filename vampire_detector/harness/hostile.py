"""Hostile uploads, made on purpose: what the service's validation and load tests throw at it.

Introduced in Chapter 6.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass


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
