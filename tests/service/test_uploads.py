"""read_portrait: what it converts, and what it refuses with which status."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vampire_detector.harness.hostile import png_claiming
from vampire_detector.images import encode
from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.service.errors import ServiceError
from vampire_detector.service.uploads import UploadLimits, read_portrait

LIMITS = UploadLimits(max_bytes=200_000, max_pixels=1_000_000, image_size=IMAGE_SIZE)


def status_of(data: bytes, content_type: str | None, limits: UploadLimits = LIMITS) -> int:
    with pytest.raises(ServiceError) as caught:
        read_portrait(data, content_type, limits)
    assert caught.value.code and caught.value.message
    return caught.value.status


def test_a_64x64_png_comes_back_pixel_for_pixel(portraits):
    assert np.array_equal(read_portrait(encode(portraits[0]), "image/png", LIMITS), portraits[0])


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1", "CMYK"])
def test_other_modes_become_rgb(portraits, mode):
    fmt, media = ("JPEG", "image/jpeg") if mode == "CMYK" else ("PNG", "image/png")
    pixels = read_portrait(encode(portraits[1], fmt, mode), media, LIMITS)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8


def test_transparent_pixels_become_black(portraits):
    rgba = np.dstack([portraits[2], np.zeros((64, 64), np.uint8)])
    assert read_portrait(encode(rgba), "image/png", LIMITS).max() == 0


def test_large_and_oblong_images_are_cropped_square_and_resized(portraits):
    wide = np.kron(portraits[3], np.ones((4, 8, 1), np.uint8))  # 256 x 512
    assert read_portrait(encode(wide, "JPEG"), "image/jpeg", LIMITS).shape == (64, 64, 3)
    assert read_portrait(encode(wide, "WEBP"), "image/webp; q=1", LIMITS).shape == (64, 64, 3)


@pytest.mark.parametrize(("name", "data", "content_type", "status"), [
    ("too many bytes", b"\x89PNG" + b"0" * 300_000, "image/png", 413),
    ("text", b"hello", "text/plain", 415),
    ("untyped", b"hello", None, 415),
    ("empty", b"", "image/png", 422),
    ("not an image", b"not an image" * 40, "image/png", 422),
    ("a bomb", png_claiming(100_000, 100_000), "image/png", 422),
    ("within Pillow's limit, over ours", png_claiming(2_000, 2_000), "image/png", 422),
])
def test_bad_uploads_are_refused(name, data, content_type, status):
    assert status_of(data, content_type) == status, name


def test_truncated_files_are_refused(portraits):
    big = encode(np.kron(portraits[4], np.ones((4, 4, 1), np.uint8)))
    for cut in (len(big) // 3, len(big) - 200):  # cut inside the pixel data
        assert status_of(big[:cut], "image/png") == 422


def test_declared_and_actual_formats_must_agree(portraits):
    assert status_of(encode(portraits[5], "JPEG"), "image/png") == 415


def test_tiny_and_high_bit_depth_images_are_refused(portraits):
    assert status_of(encode(portraits[6][:4, :4]), "image/png") == 422
    sixteen_bit = Image.fromarray(np.full((64, 64), 40_000, np.uint16))
    assert status_of(encode(sixteen_bit), "image/png") == 422
