import numpy as np
import pytest
import torch

from vampire_detector.images import MEAN, STD, from_png, normalize, to_png
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch, to_tensor


def test_png_round_trip_is_lossless():
    images, _ = make_portraits(3, seed=1)
    for image in images:
        assert np.array_equal(from_png(to_png(image)), image)


def test_to_batch_layout_and_normalisation():
    images, _ = make_portraits(4, seed=1)
    batch = to_batch(images)
    assert batch.shape == (4, 3, 64, 64) and batch.dtype == torch.float32
    red = (images[2, 5, 7, 0] / 255 - MEAN[0]) / STD[0]
    assert batch[2, 0, 5, 7].item() == pytest.approx(red, abs=1e-5)
    assert torch.equal(to_tensor(images[2]), batch[2])


def test_normalisation_constants_match_the_training_data():
    images, _ = make_portraits(2000, seed=0)
    pixels = images.reshape(-1, 3) / 255.0
    assert np.allclose(pixels.mean(0), MEAN, atol=0.01)
    assert np.allclose(pixels.std(0), STD, atol=0.01)


def test_to_batch_refuses_the_wrong_layout():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        to_batch(np.zeros((2, 3, 64, 64), dtype=np.uint8))


def test_numpy_and_torch_preprocessing_are_the_same_numbers():
    images, _ = make_portraits(4, seed=3)
    assert np.array_equal(normalize(images), to_batch(images).numpy())


def test_preprocessing_needs_no_pytorch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
            "from vampire_detector.images import normalize, from_png, to_png\n"
            "from vampire_detector.predictor import Predictor\n"
            "from vampire_detector.ort_detector import OrtDetector\n")
    subprocess.run([sys.executable, "-c", code], check=True)
