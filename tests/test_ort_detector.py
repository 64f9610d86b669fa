import numpy as np
import onnxruntime as ort
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.images import to_png
from vampire_detector.onnx_export import export_onnx
from vampire_detector.ort_detector import (
    CPU,
    OrtDetector,
    load_session,
    pick_providers,
    require_loaded,
    session_options,
)
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch


@pytest.fixture(scope="module")
def eager() -> Detector:
    return Detector.from_weights("vampirenet", device=torch.device("cpu"), batch_size=16)


@pytest.fixture(scope="module")
def onnx_path(eager, tmp_path_factory):
    return export_onnx(eager.model, tmp_path_factory.mktemp("onnx") / "vampirenet.onnx")


@pytest.fixture(scope="module")
def detector(onnx_path) -> OrtDetector:
    return OrtDetector(onnx_path, threads=1, batch_size=16)


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    return make_portraits(40, seed=2)[0]


def test_preprocessing_is_the_training_preprocessing(onnx_path, portraits):
    """The session must see the very tensor the eager model sees, so both paths must match."""
    detector = OrtDetector(onnx_path, threads=1)
    real, seen = detector.session, []

    class Spy:
        def run(self, outputs, feeds):
            seen.append(feeds[detector.input_name])
            return real.run(outputs, feeds)

    detector.session = Spy()
    detector.probabilities(portraits[:8])
    assert seen[0].dtype == np.float32
    assert np.array_equal(seen[0], to_batch(portraits[:8]).numpy())


def test_probabilities_match_the_eager_detector(detector, eager, portraits):
    ours, theirs = detector.probabilities(portraits), eager.probabilities(portraits)
    assert ours.shape == theirs.shape == (40, 2) and ours.dtype == np.float32
    assert np.allclose(ours, theirs, atol=1e-5)


def test_predictions_match_the_eager_detector(detector, eager, portraits):
    assert [p.label for p in detector.predict(portraits)] == [
        p.label for p in eager.predict(portraits)]
    png = to_png(portraits[0])
    ours, theirs = detector.predict_png(png), eager.predict_png(png)
    assert ours.label == theirs.label
    assert ours.probability == pytest.approx(theirs.probability, abs=1e-5)


def test_empty_input_gives_no_predictions(detector):
    assert detector.predict(np.empty((0, 64, 64, 3), np.uint8)) == []


def test_bad_images_get_clear_errors(detector, portraits):
    with pytest.raises(ValueError, match="uint8"):
        detector.probabilities(portraits.astype(np.float32))
    with pytest.raises(ValueError, match="64x64"):
        detector.probabilities(np.zeros((2, 32, 32, 3), np.uint8))


def test_missing_model_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OrtDetector(tmp_path / "nowhere.onnx")


def test_thread_and_optimisation_settings_reach_the_session(onnx_path):
    session = load_session(onnx_path, threads=2, optimization="basic")
    options = session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert session.get_providers()[-1] == CPU


def test_bad_settings_get_clear_errors():
    with pytest.raises(ValueError, match="threads"):
        session_options(threads=0)
    with pytest.raises(ValueError, match="optimization"):
        session_options(optimization="maximum")
    with pytest.raises(ValueError, match="available"):
        pick_providers(["NoSuchExecutionProvider"])
    assert pick_providers([CPU]) == [CPU]


class SessionThatFellBack:
    """What a GPU build's session reports where CUDA's libraries are missing: only the CPU."""

    def get_providers(self):
        return [CPU]


def test_a_provider_asked_for_by_name_must_have_loaded(onnx_path):
    with pytest.raises(ValueError, match=r"CUDAExecutionProvider did not load.*CPUExecution"):
        require_loaded(SessionThatFellBack(), ["CUDAExecutionProvider"])
    require_loaded(load_session(onnx_path, providers=[CPU]), [CPU])  # loaded: no error
