import numpy as np
import onnxruntime as ort
import pytest
import torch

from vampire_detector.model import VampireNet
from vampire_detector.onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    describe,
    export_onnx,
    export_trained,
)
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_model("vampirenet", device=torch.device("cpu"))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "vampirenet.onnx")


def test_export_runs_in_onnxruntime_with_any_batch(model, exported):
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    images, _ = make_portraits(17, seed=3)
    for size in (1, 17):
        inputs = to_batch(images[:size])
        logits = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0]
        with torch.inference_mode():
            expected = model(inputs).numpy()
        assert logits.shape == (size, 2)
        assert np.allclose(logits, expected, atol=1e-4)


def test_describe_reports_the_interface(exported):
    summary = describe(exported)
    assert summary.inputs == {INPUT_NAME: ["batch", 3, 64, 64]}
    assert summary.outputs == {OUTPUT_NAME: ["batch", 2]}
    assert summary.opset >= 18 and "Conv" in summary.operators
    assert summary.parameters > 20_000 and summary.file_bytes > 4 * 20_000


def test_export_in_train_mode_still_exports_eval_behaviour(tmp_path):
    model = load_model("vampirenet", device=torch.device("cpu")).train()
    path = export_onnx(model, tmp_path / "m.onnx")
    assert not model.training
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = to_batch(make_portraits(4, seed=3)[0]).numpy()
    first = session.run(None, {INPUT_NAME: inputs})[0]
    assert np.array_equal(first, session.run(None, {INPUT_NAME: inputs})[0])  # no dropout


def test_fixed_batch_export_refuses_other_batches(tmp_path):
    path = export_onnx(VampireNet(), tmp_path / "fixed.onnx", dynamic_batch=False)
    assert describe(path).inputs[INPUT_NAME][0] == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session.run(None, {INPUT_NAME: np.zeros((3, 3, 64, 64), np.float32)})


def test_bad_arguments_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(VampireNet(), tmp_path / "no" / "such" / "m.onnx")
    with pytest.raises(ValueError, match="image_size"):
        export_onnx(VampireNet(), tmp_path / "m.onnx", image_size=0)
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        describe(tmp_path / "missing.onnx")


def test_export_trained_gives_the_committed_model(tmp_path):
    path = export_trained("vampirenet", tmp_path / "vampirenet.onnx")
    assert describe(path).inputs[INPUT_NAME][1:] == [3, 64, 64]
