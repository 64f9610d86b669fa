"""Chapter 4 — ONNX and ONNX Runtime.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). The probes of
``autograder/probes/ch04.py`` hand it a VampireNet there; the ONNX file your export writes comes
back through the sandbox's exchange folder and is checked and run here, and the expected values
are computed here, with the grader's own copy of the model. The models that 4.2 and 4.3 run are
built here too (4.3's from the course library's float export and a preprocessing graph written
node by node), so that 4.2-4.4 do not depend on 4.1.

``vampire_detector.onnx_export`` and ``vampire_detector.ort_detector`` hold the library's own
float export and session; they are closed to ``ch04_onnx.py`` while it is graded, and the
exercises ask for what they do not do (raw pixels in the graph, a fallback that warns, a
detector with no Python preprocessing).

Wrong answers these tests catch, each with feedback that names the problem:

- 4.1 ``copies-the-library-4.1``: importing the library's ``export_onnx``.
- 4.1 ``pastes-the-library-export``: the library's float export pasted in: its input is the
  normalised float batch called ``images``, not the raw ``uint8`` pixels.
- 4.1 ``fixed-batch-export``: an example batch of 1 and no ``dynamic_shapes``: batch 1 baked in.
- 4.1 ``exported-in-training-mode``: dropout and batch statistics left in the graph.
- 4.1 ``no-normalisation-in-graph``: pixels scaled to [0, 1] but never normalised.
- 4.1 ``channels-by-reshape``: ``(N, H, W, 3)`` reshaped to ``(N, 3, H, W)`` instead of permuted.
- 4.2 ``copies-the-library-4.2``: importing the library's ``load_session``.
- 4.2 ``pastes-the-library-session``: the library's provider choice pasted in: it refuses a
  provider the build lacks instead of falling back.
- 4.2 ``providers-ignored``: always the CPU provider alone, whatever was preferred.
- 4.2 ``silent-fallback``: falling back without a ``RuntimeWarning``.
- 4.2 ``threads-ignored``: the session's intra-op threads left at onnxruntime's default.
- 4.2 ``spinning-left-on``: idle threads allowed to spin on a shared machine.
- 4.3 ``copies-the-library-4.3``: importing the library's ``OrtDetector``.
- 4.3 ``pastes-the-library-detector``: the library's detector pasted in: it normalises in Python
  and feeds floats to a model that takes the raw pixels.
- 4.3 ``softmax-on-the-wrong-axis``: a softmax over the batch instead of over the classes.
- 4.3 ``no-input-check``: ONNX Runtime's own error for images the model does not take.
- 4.3 ``hard-coded-image-size``: the check assumes 64x64 instead of reading the model's input.
- 4.3 ``probability-of-the-vampire-class``: each prediction carries P(vampire), whatever its label.
- 4.4 ``parity-in-train-mode``: the eager side compared in training mode.
- 4.4 ``compares-probabilities``: probabilities compared instead of logits.
- 4.4 ``mean-not-max``: the mean absolute difference reported as the error.
- 4.4 ``signed-difference``: the largest signed difference, blind to the model that reads low.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from autograder.sandbox import SandboxError
from vampire_detector.detector import Detector
from vampire_detector.images import MEAN, STD, to_png
from vampire_detector.onnx_export import export_trained
from vampire_detector.portraits import IMAGE_SIZE, LABELS, make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")
CPU_PROVIDER = "CPUExecutionProvider"
ATOL_LOGITS = 1e-4  # float32 kernels may sum in another order; more than this is a real bug
ATOL_PROBABILITIES = 1e-5
SMALL = 32  # the image size of the second border model, which 4.3 must not assume is 64


@pytest.fixture(scope="module")
def ch04(submission):
    return submission("ch04_onnx")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch04", "ch04_onnx")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_model("vampirenet", device=CPU).eval()


@pytest.fixture(scope="module")
def exchange(sandbox) -> Path:
    """A folder for this module's files, in the exchange folder the sandboxed code can read."""
    return Path(tempfile.mkdtemp(prefix="ch04-", dir=sandbox.exchange))


@pytest.fixture(scope="module")
def reference_onnx(exchange) -> Path:
    """VampireNet exported by the course library: a float model taking ``images`` (4.3's border
    models are built on it, and 4.4 compares it with the eager model)."""
    return export_trained("vampirenet", exchange / "vampirenet.onnx")


def border_graph(float_path: Path, out_path: Path, size: int | None = None) -> Path:
    """The float model at ``float_path`` behind a preprocessing graph written node by node:
    ``pixels`` (uint8, batch x size x size x 3) in, the float model's ``logits`` out.

    VampireNet pools globally before its classifier, so its graph runs at any image size once
    its input declares it: ``size`` (default: the float model's own) re-declares it.
    """
    float_model = onnx.load(str(float_path))
    (images,) = float_model.graph.input
    dims = images.type.tensor_type.shape.dim
    if size is not None:
        dims[2].dim_value = dims[3].dim_value = size
        del float_model.graph.value_info[:]  # shapes inferred at the old size
    height, width = dims[2].dim_value, dims[3].dim_value
    constants = [numpy_helper.from_array(
        (255 * np.array(values, np.float32)).reshape(1, 3, 1, 1), name)
        for name, values in (("grader_mean", MEAN), ("grader_std", STD))]
    preprocessing = helper.make_graph(
        [helper.make_node("Transpose", ["pixels"], ["grader_nchw"], perm=[0, 3, 1, 2]),
         helper.make_node("Cast", ["grader_nchw"], ["grader_float"], to=TensorProto.FLOAT),
         helper.make_node("Sub", ["grader_float", "grader_mean"], ["grader_centred"]),
         helper.make_node("Div", ["grader_centred", "grader_std"], ["grader_images"])],
        "grader_preprocessing",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", height, width, 3])],
        [helper.make_tensor_value_info("grader_images", TensorProto.FLOAT,
                                       ["batch", 3, height, width])],
        constants)
    front = helper.make_model(preprocessing, opset_imports=list(float_model.opset_import),
                              ir_version=float_model.ir_version)
    merged = onnx.compose.merge_models(front, float_model, io_map=[("grader_images", images.name)])
    onnx.checker.check_model(merged, full_check=True)
    onnx.save(merged, str(out_path))
    return out_path


@pytest.fixture(scope="module")
def reference_border(reference_onnx, exchange) -> Path:
    """The grader's own border model: VampireNet behind its preprocessing, at 64x64."""
    return border_graph(reference_onnx, exchange / "border.onnx")


@pytest.fixture(scope="module")
def small_border(reference_onnx, exchange) -> Path:
    """The same at 32x32, to see whether a detector reads its model's input size."""
    return border_graph(reference_onnx, exchange / f"border{SMALL}.onnx", size=SMALL)


@pytest.fixture(scope="module")
def plain_onnx(exchange) -> Path:
    """A small float model written node by node, for the session exercise (no export needed):
    ``images`` (batch, 3, 64, 64) averaged per channel, then mixed into two ``logits``."""
    mixing = numpy_helper.from_array(np.array([[1, -1], [0.5, 0.5], [-1, 1]], np.float32), "mix")
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["channels"]),
         helper.make_node("MatMul", ["channels", "mix"], ["logits"])],
        "plain",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                       ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [mixing])
    # IR 10 and opset 20, as the exporter writes them: onnx's own newest may be beyond the
    # installed onnxruntime
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    path = exchange / "plain.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    return make_portraits(40, seed=11)[0]


@pytest.fixture(scope="module")
def eager() -> Detector:
    return Detector.from_weights("vampirenet", device=CPU)


def cpu_session(path: Path, optimise: bool = True) -> ort.InferenceSession:
    """A CPU session; without ``optimise``, it runs the graph as the file holds it (the
    optimiser would remove a training-mode ``Dropout`` that another runtime might run)."""
    options = ort.SessionOptions()
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=[CPU_PROVIDER])


def eager_logits(model: torch.nn.Module, inputs: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model.eval()(inputs).numpy()


def run_pixels(session: ort.InferenceSession, pixels: np.ndarray) -> np.ndarray:
    """The session's logits for raw ``pixels``, or a failure that says what it refused."""
    try:
        return session.run(None, {"pixels": pixels})[0]
    except Exception as error:  # onnxruntime raises its own exception types
        pytest.fail(f"ONNX Runtime refused a batch of {len(pixels)} uint8 portraits "
                    f"{pixels.shape[1:]}: {error}", pytrace=False)


# Exercise 4.1 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def border_export(probe, sandbox, exchange) -> Path:
    """The file the student's export_border_model wrote (run once, in the sandbox)."""
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=exchange))
    returned = probe.export(str(folder / "border.onnx"))
    assert returned["is_path"], "return the path of the exported file as a pathlib.Path"
    try:
        return sandbox.received(returned["path"])
    except SandboxError:
        pytest.fail("no ONNX file was written at the path you returned", pytrace=False)


def input_of(path: Path) -> onnx.ValueInfoProto:
    return onnx.load(str(path)).graph.input[0]


@pytest.mark.exercise("4.1")
@pytest.mark.points(2)
def test_export_writes_a_valid_named_model(border_export):
    """4.1 export_border_model writes a file that passes onnx.checker, with named I/O"""
    proto = onnx.load(str(border_export))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        pytest.fail(f"onnx.checker rejects the exported model: {error}", pytrace=False)
    assert [value.name for value in proto.graph.input] == ["pixels"], (
        "the model must have exactly one input, named 'pixels': the raw pixels as they arrive")
    assert [value.name for value in proto.graph.output] == ["logits"], (
        "the model must have exactly one output, named 'logits'")


@pytest.mark.exercise("4.1")
@pytest.mark.points(2)
def test_export_takes_raw_pixels_in_any_batch(border_export):
    """4.1 the exported model takes uint8 (batch, 64, 64, 3) pixels, batches of 1 and of 17"""
    declared = input_of(border_export).type.tensor_type
    assert declared.elem_type == TensorProto.UINT8, (
        "the input must be uint8: the border sends raw pixels, and the graph does the scaling "
        "and normalisation itself")
    dims = declared.shape.dim
    assert [axis.dim_value for axis in dims[1:]] == [IMAGE_SIZE, IMAGE_SIZE, 3], (
        "the input must be (batch, height, width, 3): channels last, as the camera sends them")
    assert dims[0].dim_param, (
        "axis 0 of the input has a fixed size: declare it dynamic with dynamic_shapes")
    session = cpu_session(border_export)
    images = make_portraits(17, seed=12)[0]
    for size in (1, 17):
        logits = run_pixels(session, images[:size])
        assert logits.shape == (size, 2), f"a batch of {size} gave logits of shape {logits.shape}"


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_export_is_in_eval_mode(border_export):
    """4.1 the exported model answers like a model in eval mode, though it arrived in training"""
    session = cpu_session(border_export, optimise=False)
    images = make_portraits(9, seed=13)[0]
    alone = np.concatenate([run_pixels(session, images[i:i + 1]) for i in range(len(images))])
    together, again = run_pixels(session, images), run_pixels(session, images)
    assert np.abs(together - again).max() <= ATOL_LOGITS and (
        np.abs(together - alone).max() <= ATOL_LOGITS), (
        "run as the file holds it, the same portraits get different logits from one run to the "
        "next, or alone and in a batch: dropout or batch statistics are in the graph; export the "
        "model in eval mode")


@pytest.mark.exercise("4.1")
@pytest.mark.points(3)
def test_export_does_the_preprocessing_in_the_graph(border_export, model):
    """4.1 raw pixels in the exported model give the eager model's logits within 1e-4"""
    session = cpu_session(border_export)
    images = make_portraits(17, seed=14)[0]
    for size in (1, 17):
        logits = run_pixels(session, images[:size])
        error = float(np.abs(logits - eager_logits(model, to_batch(images[:size]))).max())
        assert error <= ATOL_LOGITS, (
            f"for a batch of {size}, the exported model's logits differ from the eager model's "
            f"on the training preprocessing by up to {error:.2g} (allowed: {ATOL_LOGITS:g}): "
            "the graph must move the channels first (the axes, not just the shape), scale to "
            "[0, 1] and normalise with MEAN and STD, exactly as images.normalize does")


# Exercise 4.2 ------------------------------------------------------------------------------

def runtime_warnings(seen: dict) -> list[str]:
    return [message for kind, message in seen["warnings"] if kind == "RuntimeWarning"]


@pytest.mark.exercise("4.2")
@pytest.mark.points(2)
def test_session_has_the_requested_settings(probe, plain_onnx):
    """4.2 make_session uses the CPU provider, the threads asked for, every optimisation and no
    spinning"""
    session = probe.session(str(plain_onnx), 2)
    assert session["kind"] == "InferenceSession", "return an onnxruntime.InferenceSession"
    assert session["intra_op_num_threads"] == 2, (
        "the session does not use the number of intra-op threads it was asked for")
    assert session["graph_optimization_level"] == ort.GraphOptimizationLevel.ORT_ENABLE_ALL.name, (
        "enable every graph optimisation level (ORT_ENABLE_ALL)")
    assert session["allow_spinning"] == "0", (
        "idle threads may still spin: set the session config entry "
        "'session.intra_op.allow_spinning' to '0'")
    assert session["providers"] == [CPU_PROVIDER], (
        "asked for the CPU provider only, the session runs on others too")
    assert session["logits_shape"] == [3, 2], "the session cannot run the exported model"


def unavailable_provider() -> str:
    """A provider onnxruntime knows of that this build lacks (CUDA, unless this build has it)."""
    available = ort.get_available_providers()
    return next(name for name in ("CUDAExecutionProvider", *ort.get_all_providers())
                if name not in available)


@pytest.mark.exercise("4.2")
@pytest.mark.points(2)
def test_session_falls_back_loudly(probe, plain_onnx):
    """4.2 make_session keeps the available preferred providers in order, falls back to the CPU
    and warns about each one it leaves out"""
    missing = unavailable_provider()
    # Azure's provider ships in the PyPI build and runs a plain model at once (unlike TensorRT,
    # which builds an engine for minutes); where it is missing, the CPU alone is expected.
    available = ort.get_available_providers()
    present = [name for name in ("AzureExecutionProvider",) if name in available]
    try:
        session = probe.session(str(plain_onnx), 1, [missing, *present])
    except ValueError as error:
        pytest.fail(f"make_session refused a provider this build lacks ({error}): fall back to "
                    "the others, and to the CPU, with a RuntimeWarning", pytrace=False)
    assert session["kind"] == "InferenceSession", "return an onnxruntime.InferenceSession"
    assert session["providers"] == [*present, CPU_PROVIDER], (
        "the session does not run on the preferred providers this build has, in the order of "
        "preference, followed by the CPU")
    warned = runtime_warnings(session)
    assert any(missing in message for message in warned), (
        "no RuntimeWarning names the preferred provider that this build lacks: never fall "
        "back silently")
    assert len(warned) == 1, (
        f"{len(warned)} RuntimeWarnings for one preferred provider that this build lacks: warn "
        "once for each provider left out, and for no other")
    assert session["logits_shape"] == [3, 2], "the session cannot run the exported model"


@pytest.mark.exercise("4.2")
@pytest.mark.points(1)
def test_session_refuses_a_misspelt_provider(ch04, plain_onnx):
    """4.2 make_session raises ValueError for a provider name that no onnxruntime build knows"""
    typo = "CUDAExecutionProvder"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ch04.make_session(plain_onnx, providers=(typo,))
        except ValueError as error:
            assert typo in str(error), "the ValueError should name the misspelt provider"
            return
    pytest.fail(f"make_session accepted the provider {typo!r}, which no onnxruntime build has: "
                "a typo must raise ValueError, not fall back", pytrace=False)


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


def probabilities_of(detector, images: np.ndarray) -> np.ndarray:
    """The detector's probabilities, or a failure that says why ONNX Runtime refused."""
    try:
        return detector.probabilities(images)
    except SandboxError:
        raise
    except Exception as error:
        pytest.fail(f"probabilities raised {type(error).__name__} on uint8 portraits the model "
                    f"takes: {error}\nThe border model does its own preprocessing: feed it the "
                    "pixels unchanged", pytrace=False)


@pytest.mark.exercise("4.3")
@pytest.mark.points(3)
def test_border_detector_probabilities_match_eager(ch04, reference_border, eager, portraits):
    """4.3 BorderDetector.probabilities matches the eager Detector within 1e-5"""
    probabilities = probabilities_of(ch04.BorderDetector(reference_border), portraits)
    assert isinstance(probabilities, np.ndarray), "return a numpy array"
    assert probabilities.shape == (len(portraits), 2), (
        f"expected one row of two probabilities per portrait, got {probabilities.shape}")
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5), (
        "each row must sum to 1: apply a softmax to each portrait's logits (over the classes)")
    assert np.allclose(probabilities, eager.probabilities(portraits), atol=ATOL_PROBABILITIES), (
        "the probabilities differ from the eager detector's: feed the pixels unchanged (the "
        "model does its own preprocessing) and take a softmax of the logits")


@pytest.mark.exercise("4.3")
@pytest.mark.points(2)
def test_border_detector_predictions_match_eager(ch04, reference_border, eager, portraits):
    """4.3 BorderDetector.predict and predict_png give the eager Detector's predictions"""
    detector = ch04.BorderDetector(reference_border)
    probabilities_of(detector, portraits[:1])
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
def test_border_detector_takes_any_batch_and_threads(ch04, reference_border, eager, portraits):
    """4.3 BorderDetector runs one portrait or 17, with the threads it was given"""
    detector = ch04.BorderDetector(reference_border, threads=2)
    assert detector.session.get_session_options().intra_op_num_threads == 2, (
        "the session in self.session does not use the threads the detector was given")
    for size in (1, 17):
        probabilities_of(detector, portraits[:size])
        assert [p.label for p in described(detector.predict(portraits[:size]))] == [
            p.label for p in eager.predict(portraits[:size])], (
            f"a batch of {size} portraits gave different labels from the eager detector")


def refusal(detector, images: np.ndarray, what: str) -> str:
    """The message of the ValueError the detector raises for ``images``, or a failure."""
    try:
        detector.probabilities(images)
    except ValueError as error:
        return str(error)
    except SandboxError:
        raise
    except Exception as error:
        pytest.fail(f"given {what}, probabilities let ONNX Runtime's own {type(error).__name__} "
                    "through: check the images against the model's input first and raise "
                    "ValueError saying what it takes", pytrace=False)
    pytest.fail(f"given {what}, probabilities did not raise ValueError", pytrace=False)


@pytest.mark.exercise("4.3")
@pytest.mark.points(2)
def test_border_detector_refuses_what_its_model_does_not_take(ch04, reference_border,
                                                              small_border, portraits):
    """4.3 BorderDetector checks images against its model's declared input, with ValueError"""
    detector = ch04.BorderDetector(reference_border)
    message = refusal(detector, portraits[:2].astype(np.float32), "float32 portraits")
    assert "uint8" in message, "the ValueError for float images should say the model takes uint8"
    small = make_portraits(3, seed=15, size=SMALL)[0]
    message = refusal(detector, small, f"{SMALL}x{SMALL} portraits")
    assert str(IMAGE_SIZE) in message, (
        "the ValueError for portraits of the wrong size should say the size the model takes")
    other = ch04.BorderDetector(small_border)
    try:
        probabilities = other.probabilities(small)
    except ValueError:
        pytest.fail(f"a model exported at {SMALL}x{SMALL} refused {SMALL}x{SMALL} portraits: read "
                    "the height and width from the input the model declares", pytrace=False)
    assert np.shape(probabilities) == (len(small), 2), (
        f"a {SMALL}x{SMALL} model gave probabilities of shape {np.shape(probabilities)}")
    message = refusal(other, portraits[:2], f"{IMAGE_SIZE}x{IMAGE_SIZE} portraits")
    assert str(SMALL) in message, (
        "the ValueError should say the size this model declares, read from its input")


@pytest.mark.exercise("4.3")
@pytest.mark.points(1)
def test_border_detector_missing_model(ch04, shared_path):
    """4.3 BorderDetector refuses a missing model file with FileNotFoundError"""
    with pytest.raises(FileNotFoundError):
        ch04.BorderDetector(shared_path / "nowhere.onnx")


# Exercise 4.4 ------------------------------------------------------------------------------

def report_of(seen: dict) -> SimpleNamespace:
    """The grader's copy of a parity report: the probe hands the student's parity_report the
    real session, or one whose logits drift in one place at one batch size only."""
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
    """4.4 parity_report finds one logit that reads low at one batch size only"""
    report = report_of(probe.parity(str(reference_onnx), (1, 8, 32), bad_batch=8, shift=-0.05))
    assert report.worst_batch == 8, (
        "worst_batch is not the batch size where the logits differ most: take the largest "
        "absolute difference, whichever way it goes")
    assert abs(report.worst_error - 0.05) < 1e-3, (
        "worst_error must be the largest absolute difference between the logits (not their "
        "mean, not a difference of probabilities)")
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
