"""Shared inputs of the service tests: portraits, encoders and a ready eager service."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vampire_detector.portraits import make_portraits
from vampire_detector.service.app import create_app
from vampire_detector.service.settings import ServiceSettings


def encode(image: np.ndarray | Image.Image, fmt: str = "PNG", mode: str | None = None) -> bytes:
    image = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


@pytest.fixture(scope="session")
def portraits() -> np.ndarray:
    return make_portraits(8, seed=31)[0]


@pytest.fixture(scope="module")
def settings() -> ServiceSettings:
    return ServiceSettings(runtime="eager", max_upload_bytes=100_000, max_batch_files=4,
                           max_batch_size=4, warmup_batches=1)


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, load_in_background=False)) as client:
        yield client
