import numpy as np
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.images import to_png
from vampire_detector.portraits import LABELS, make_portraits
from vampire_detector.weights import load_model


@pytest.fixture(scope="module")
def detector():
    return Detector.from_weights(device=torch.device("cpu"), batch_size=16)


def test_committed_model_detects_vampires(detector):
    images, labels = make_portraits(300, seed=2)  # the test split, unseen in training
    predicted = [LABELS.index(p.label) for p in detector.predict(images)]
    assert np.mean(np.array(predicted) == labels) >= 0.93


def test_probabilities_are_batched_and_consistent(detector):
    images, _ = make_portraits(40, seed=2)
    all_at_once = detector.probabilities(images)
    one_by_one = np.concatenate([detector.probabilities(images[i:i + 1]) for i in range(40)])
    assert all_at_once.shape == (40, 2)
    assert np.allclose(all_at_once.sum(1), 1, atol=1e-5)
    assert np.allclose(all_at_once, one_by_one, atol=1e-5)  # eval mode: no batch statistics


def test_predictions_carry_label_and_confidence(detector):
    images, _ = make_portraits(5, seed=2)
    for prediction in detector.predict(images):
        assert prediction.label in LABELS and 0.5 <= prediction.probability <= 1.0
    assert detector.predict_png(to_png(images[0])) == detector.predict(images[:1])[0]


def test_empty_input_gives_no_predictions(detector):
    assert detector.predict(np.empty((0, 64, 64, 3), np.uint8)) == []


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m vampire_detector\.train"):
        load_model("resnet18", path=tmp_path / "none.pt")
