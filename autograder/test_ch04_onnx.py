"""Chapter 4 — ONNX and ONNX Runtime.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). The probes of
``autograder/probes/ch04.py`` hand it a VampireNet there; the ONNX file your export writes comes
back through the sandbox's exchange folder and is checked and run here, and the expected values
are computed here, with the grader's own copy of the model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from autograder.sandbox import SandboxError
from vampire_detector.detector import Detector
from vampire_detector.images import to_png
from vampire_detector.onnx_export import export_trained
from vampire_detector.portraits import LABELS, make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")
ATOL_LOGITS = 1e-4  # float32 kernels may sum in another order; more than this is a real bug
ATOL_PROBABILITIES = 1e-5


@pytest.fixture(scope="module")
def ch04(submission):
    return submission("ch04_onnx")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch04", "ch04_onnx")


@pytest.fixture
def model() -> torch.nn.Module:
    return load_model("vampirenet", device=CPU)


@pytest.fixture(scope="module")
def reference_onnx(sandbox) -> Path:
    """VampireNet exported by the course library, so that 4.2-4.4 do not depend on 4.1.

    It lies in the exchange folder, where the sandboxed code can read it.
    """
    folder = Path(tempfile.mkdtemp(prefix="reference-", dir=sandbox.exchange))
    return export_trained("vampirenet", folder / "vampirenet.onnx")


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    return make_portraits(40, seed=11)[0]


@pytest.fixture(scope="module")
def eager() -> Detector:
    return Detector.from_weights("vampirenet", device=CPU)


def cpu_session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def eager_logits(model: torch.nn.Module, inputs: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model.eval()(inputs).numpy()


def run_batch(session: ort.InferenceSession, inputs: np.ndarray) -> np.ndarray:
    """The session's logits for ``inputs``, or a failure that says which batch size it refused."""
    try:
        return session.run(None, {"images": inputs})[0]
    except Exception as error:  # onnxruntime raises its own exception types
        pytest.fail(f"ONNX Runtime refused a batch of {len(inputs)}: {error}", pytrace=False)


def exported(probe, sandbox, folder: Path) -> Path:
    """The file the student's export_with_dynamic_batch wrote, run in the sandbox."""
    returned = probe.export(str(folder / "vampirenet.onnx"))
    assert returned["is_path"], "return the path of the exported file as a pathlib.Path"
    try:
        return sandbox.received(returned["path"])
    except SandboxError:
        pytest.fail("no ONNX file was written at the path you returned", pytrace=False)


# Exercise 4.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("4.1")
@pytest.mark.points(2)
def test_export_writes_a_valid_named_model(probe, sandbox, shared_path):
    """4.1 export_with_dynamic_batch writes a file that passes onnx.checker, with named I/O"""
    path = exported(probe, sandbox, shared_path)
    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        pytest.fail(f"onnx.checker rejects the exported model: {error}", pytrace=False)
    assert [value.name for value in proto.graph.input] == ["images"], (
        "the model must have exactly one input, named 'images'")
    assert [value.name for value in proto.graph.output] == ["logits"], (
        "the model must have exactly one output, named 'logits'")


@pytest.mark.exercise("4.1")
@pytest.mark.points(2)
def test_export_has_a_dynamic_batch_axis(probe, sandbox, shared_path):
    """4.1 the exported model runs batches of 1 and of 17 in ONNX Runtime"""
    path = exported(probe, sandbox, shared_path)
    batch_axis = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_axis.dim_param, (
        "axis 0 of the input has a fixed size: declare it dynamic with dynamic_shapes")
    session = cpu_session(path)
    for size in (1, 17):
        inputs = torch.randn(size, 3, 64, 64, generator=torch.Generator().manual_seed(size))
        logits = run_batch(session, inputs.numpy())
        assert logits.shape == (size, 2), f"a batch of {size} gave logits of shape {logits.shape}"


@pytest.mark.exercise("4.1")
@pytest.mark.points(3)
def test_export_matches_eager_in_onnxruntime(probe, sandbox, model, shared_path):
    """4.1 the exported model's logits match the eager model's within 1e-4"""
    path = exported(probe, sandbox, shared_path)
    session = cpu_session(path)
    images = make_portraits(17, seed=12)[0]
    for size in (1, 17):
        inputs = to_batch(images[:size])
        logits = run_batch(session, inputs.numpy())
        error = float(np.abs(logits - eager_logits(model, inputs)).max())
        assert error <= ATOL_LOGITS, (
            f"for a batch of {size}, ONNX Runtime and the eager model differ by up to "
            f"{error:.2g} (allowed: {ATOL_LOGITS:g}): did you export the model you were given, "
            "in eval mode?")


# Exercise 4.2 ------------------------------------------------------------------------------

@pytest.mark.exercise("4.2")
@pytest.mark.points(2)
def test_session_has_the_requested_settings(probe, reference_onnx):
    """4.2 make_session uses the CPU provider, the requested threads and all optimisations"""
    session = probe.session(str(reference_onnx), 2)
    assert session["kind"] == "InferenceSession", "return an onnxruntime.InferenceSession"
    assert session["intra_op_num_threads"] == 2, (
        "the session does not use the number of intra-op threads it was asked for")
    assert session["graph_optimization_level"] == ort.GraphOptimizationLevel.ORT_ENABLE_ALL.name, (
        "enable every graph optimisation level (ORT_ENABLE_ALL)")
    assert session["providers"] == ["CPUExecutionProvider"], (
        "run on the CPUExecutionProvider only")
    assert session["logits_shape"] == [3, 2], "the session cannot run the exported model"


@pytest.mark.exercise("4.2")
@pytest.mark.points(1)
def test_session_for_a_missing_file_says_which(ch04, shared_path):
    """4.2 make_session raises FileNotFoundError naming a missing model file"""
    missing = shared_path / "lost_in_the_crypt.onnx"
    with pytest.raises(FileNotFoundError) as raised:
        ch04.make_session(missing)
    assert "lost_in_the_crypt.onnx" in str(raised.value), (
        "the FileNotFoundError message should name the file that is missing")


# Exercise 4.3 ------------------------------------------------------------------------------

class Seen(NamedTuple):
    """The grader's copy of one prediction (the student's stays in the sandbox)."""

    label: object
    probability: float


def described(predictions: object) -> list[Seen]:
    """Each prediction's label and probability, asked for once."""
    assert isinstance(predictions, list), "return a list of predictions"
    return [Seen(p.label, float(p.probability)) for p in predictions]


@pytest.mark.exercise("4.3")
@pytest.mark.points(3)
def test_border_detector_probabilities_match_eager(ch04, reference_onnx, eager, portraits):
    """4.3 BorderDetector.probabilities matches the eager Detector within 1e-5"""
    probabilities = ch04.BorderDetector(reference_onnx).probabilities(portraits)
    assert isinstance(probabilities, np.ndarray), "return a numpy array"
    assert probabilities.shape == (len(portraits), 2), (
        f"expected one row of two probabilities per portrait, got {probabilities.shape}")
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5), (
        "each row must sum to 1: apply a softmax to the logits")
    assert np.allclose(probabilities, eager.probabilities(portraits), atol=ATOL_PROBABILITIES), (
        "the probabilities differ from the eager detector's: the session must receive exactly "
        "the preprocessing the model was trained with (scale, channel order, normalisation)")


@pytest.mark.exercise("4.3")
@pytest.mark.points(2)
def test_border_detector_predictions_match_eager(ch04, reference_onnx, eager, portraits):
    """4.3 BorderDetector.predict and predict_png give the eager Detector's predictions"""
    detector = ch04.BorderDetector(reference_onnx)
    ours, theirs = described(detector.predict(portraits)), eager.predict(portraits)
    assert len(ours) == len(portraits), "return one prediction per image"
    assert all(p.label in LABELS for p in ours), f"labels must be one of {LABELS}"
    assert [p.label for p in ours] == [p.label for p in theirs], (
        "some labels differ from the eager detector's")
    assert np.allclose([p.probability for p in ours], [p.probability for p in theirs],
                       atol=ATOL_PROBABILITIES), (
        "each prediction's probability must be that of its predicted label")
    (png,) = described([detector.predict_png(to_png(portraits[3]))])
    assert png.label == theirs[3].label and abs(png.probability - theirs[3].probability) < 1e-5, (
        "predict_png must decode the PNG and predict exactly as predict does")


@pytest.mark.exercise("4.3")
@pytest.mark.points(1)
def test_border_detector_takes_any_batch_and_threads(ch04, reference_onnx, eager, portraits):
    """4.3 BorderDetector runs one portrait or 17, with the threads it was given"""
    detector = ch04.BorderDetector(reference_onnx, threads=2)
    assert detector.session.get_session_options().intra_op_num_threads == 2, (
        "the session in self.session does not use the threads the detector was given")
    for size in (1, 17):
        assert [p.label for p in described(detector.predict(portraits[:size]))] == [
            p.label for p in eager.predict(portraits[:size])], (
            f"a batch of {size} portraits gave different labels from the eager detector")


@pytest.mark.exercise("4.3")
@pytest.mark.points(1)
def test_border_detector_missing_model(ch04, shared_path):
    """4.3 BorderDetector refuses a missing model file with FileNotFoundError"""
    with pytest.raises(FileNotFoundError):
        ch04.BorderDetector(shared_path / "nowhere.onnx")


# Exercise 4.4 ------------------------------------------------------------------------------

def report_of(seen: dict) -> SimpleNamespace:
    """The grader's copy of a parity report: the probe hands the student's parity_report the
    real session, or one whose logits drift by a shift at one batch size only."""
    return SimpleNamespace(**seen)


@pytest.mark.exercise("4.4")
@pytest.mark.points(2)
def test_parity_report_on_a_faithful_export(probe, reference_onnx):
    """4.4 parity_report measures every batch size and passes a faithful export"""
    report = report_of(probe.parity(str(reference_onnx), (1, 5, 17)))
    assert sorted(report.errors) == [1, 5, 17], "report one error per requested batch size"
    assert all(0 <= error <= ATOL_LOGITS for error in report.errors.values()), (
        "a faithful export should differ from the eager model by less than 1e-4 everywhere: "
        "compare logits with logits, in eval mode")
    assert report.worst_error == max(report.errors.values()), (
        "worst_error must be the largest of the errors")
    assert report.errors[report.worst_batch] == report.worst_error, (
        "worst_batch must be the batch size where the error was largest")
    assert report.ok, "a report within atol must be ok"


@pytest.mark.exercise("4.4")
@pytest.mark.points(2)
def test_parity_report_finds_the_worst_batch(probe, reference_onnx):
    """4.4 parity_report finds a discrepancy that appears at one batch size only"""
    report = report_of(probe.parity(str(reference_onnx), (1, 8, 32), bad_batch=8, shift=0.05))
    assert report.worst_batch == 8, "worst_batch is not the batch size with the largest error"
    assert abs(report.worst_error - 0.05) < 1e-3, (
        "worst_error must be the largest absolute difference between the logits")
    assert report.errors[1] <= ATOL_LOGITS and report.errors[32] <= ATOL_LOGITS, (
        "the batch sizes without a discrepancy should show (almost) none")
    assert not report.ok, "a report with an error above atol must not be ok"


@pytest.mark.exercise("4.4")
@pytest.mark.points(1)
def test_parity_report_compares_in_eval_mode(probe, reference_onnx):
    """4.4 parity_report compares the exported model with the eager one in eval mode"""
    report = report_of(probe.parity(str(reference_onnx), (4,), train=True))
    assert report.worst_error <= ATOL_LOGITS, (
        "the eager model was handed over in training mode and its dropout made the comparison "
        "meaningless: switch it to eval mode first")
