"""Chapter 5 — Quantization and half precision.

The tests measure what your code produces, on VampireNet (whose weights ship with the course):
the portraits your calibration reader gives, batch by batch, and when it opens them; the
sensitivity of each layer against the grader's own measurement; and, in the quantized file,
which nodes stayed in FP32, the scales that calibration fixed, the 8-bit weights, the size (at
most 35% of the FP32 file) and the accuracy on 1000 held-out portraits (at most 1 point below
the FP32 model).

Sealed: your code runs in a sandboxed process (the ``submission`` fixture); your reader's
batches and your files come back here (files through the sandbox's exchange folder), and are
measured here, against the grader's own quantization of the same portraits. The probes of
``autograder/probes/ch05.py`` hand your functions what the library makes there (a calibration
reader, held-out portraits); to grade which layers you keep in FP32 apart from how you measure
them, one probe stands the grader's own measurements in for your ``layer_sensitivity``.
``vampire_detector.quantize`` holds the library's own reader and quantizer: your file cannot
import it.

Wrong answers these tests catch, each with feedback that names the problem:

- 5.1 ``copies-the-library``: the library's reader imported instead of written.
- 5.1 ``same-batch-forever``: ``get_next`` never moves on, so calibration never ends.
- 5.1 ``not-normalised``: pixels scaled to [0, 1] but not normalised (Renfield's calibration).
- 5.1 ``mixes-populations``: batches cut across the populations' boundaries.
- 5.1 ``rounds-each-quota``: each quota rounded on its own, so the shares miss ``n``.
- 5.1 ``reads-everything-up-front``: every portrait opened when the reader is made.
- 5.2 ``copies-the-library``: the library's quantizer imported instead of written.
- 5.2 ``dynamic-instead-of-static``: ``quantize_dynamic``, whose activation scales are not
  calibrated.
- 5.2 ``sensitivity-of-all-but-one``: each layer measured by excluding it, not quantizing it alone.
- 5.2 ``reader-never-rewound``: the reader drained by the first calibration and never rewound.
- 5.2 ``keeps-the-least-sensitive``: the least sensitive layers kept in FP32.
- 5.2 ``input-name-hard-coded``: the inputs fed as ``"images"`` whatever the model's input name.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)
from torch import nn

from autograder.sandbox import SandboxError
from vampire_detector.dataset import PortraitDataset
from vampire_detector.images import normalize, to_png
from vampire_detector.onnx_export import export_onnx, export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.quantize import PortraitCalibrationReader, quantize_onnx_static

MAX_ACCURACY_DROP = 0.01  # one point of accuracy on the held-out portraits
MAX_SIZE_RATIO = 0.35  # of the FP32 file
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger", "QGemm"}
EIGHT_BITS = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
WEIGHTED_OPS = {"Conv", "Gemm", "MatMul"}
INPUT_NAME = "portrait"  # the border's model calls its input so, not "images" as the exporter does
CALIBRATION = 40  # training portraits the probes' reader gives, in batches of 20
SENSITIVITY_INPUTS = 200  # held-out portraits on which sensitivity is measured
SETTINGS = {"quant_format": QuantFormat.QDQ, "per_channel": False,
            "activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8}


@pytest.fixture(scope="module")
def ch05(submission):
    return submission("ch05_quantization")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch05", "ch05_quantization")


def exchanged(sandbox, name: str) -> Path:
    """A fresh folder in the sandbox's exchange folder, where both sides see the files."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=sandbox.exchange))


@pytest.fixture(scope="module")
def fp32_path(sandbox) -> Path:
    return export_trained("vampirenet", exchanged(sandbox, "fp32") / "vampirenet.onnx")


@pytest.fixture(scope="module")
def border_fp32(fp32_path, sandbox) -> Path:
    """The same model, whose input is called ``INPUT_NAME``: code that assumes a name fails."""
    model = onnx.load(str(fp32_path))
    old = model.graph.input[0].name
    model.graph.input[0].name = INPUT_NAME
    for node in model.graph.node:
        node.input[:] = [INPUT_NAME if name == old else name for name in node.input]
    path = exchanged(sandbox, "border") / "vampirenet.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def held_out() -> PortraitDataset:
    return PortraitDataset(1000, "test")


@pytest.fixture(scope="module")
def fp32_accuracy(border_fp32, held_out) -> float:
    return accuracy(border_fp32, held_out)


def accuracy(path: Path, data: PortraitDataset) -> float:
    predicted = OrtDetector(path, threads=1).probabilities(data.images).argmax(1)
    return float(np.mean(predicted == data.labels.numpy()))


class Replay(CalibrationDataReader):
    """Given batches, given (again) to the grader's own calibrator."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self.batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


@pytest.fixture(scope="module")
def prepared(border_fp32, tmp_path_factory) -> Path:
    """The border's model, pre-processed for quantization once for all the grader's copies."""
    path = tmp_path_factory.mktemp("prepared") / "vampirenet.onnx"
    quant_pre_process(str(border_fp32), str(path))
    return path


def grader_quantize(prepared: Path, out: Path, batches: list[dict[str, np.ndarray]],
                    **which: list[str]) -> Path:
    """The grader's static INT8 copy of a pre-processed model: QDQ, U8S8, per tensor, MinMax."""
    quantize_static(str(prepared), str(out), Replay(batches), **SETTINGS, **which)
    return out


def drain(reader) -> list[dict[str, np.ndarray]]:
    """Every batch a calibration reader gives before it returns None (at most 50: no test
    asks for half as many)."""
    batches = []
    for _ in range(50):
        batch = reader.get_next()
        if batch is None:
            return batches
        batches.append(batch)
    pytest.fail("get_next never returned None: the calibrator would loop forever", pytrace=False)


# Exercise 5.1 ------------------------------------------------------------------------------

PORTRAITS_PER_FOLDER = 12
SHARES = {"clean": 47, "candlelight": 27, "makeup": 26}  # n = 10: quotas 4.7, 2.7 and 2.6


def write_gate(folder: Path, populations: tuple[str, ...], count: int) -> Path:
    """``count`` training portraits of each population as PNGs, ``sitter-NN.png``, written in a
    shuffled order, beside a note that is not a portrait."""
    for population in populations:
        (folder / population).mkdir(parents=True)
        images = PortraitDataset(count, "train", population).images
        order = list(range(count))
        random.Random(population).shuffle(order)
        for index in order:
            (folder / population / f"sitter-{index:02d}.png").write_bytes(to_png(images[index]))
        (folder / population / "notes.txt").write_text("painted at the gate\n")
    return folder


def served(population: str, first: int, last: int) -> np.ndarray:
    """Portraits ``first`` to ``last - 1`` of a gate folder, as the detector sees them."""
    return normalize(PortraitDataset(PORTRAITS_PER_FOLDER, "train", population).images)[first:last]


@pytest.fixture(scope="module")
def gate(sandbox) -> Path:
    return write_gate(exchanged(sandbox, "gate"), ("clean", "candlelight", "makeup"),
                      PORTRAITS_PER_FOLDER)


def portraits(batches: list, input_name: str = INPUT_NAME) -> list[np.ndarray]:
    """The arrays of a reader's batches, once their form is checked."""
    assert batches, "the first call of get_next returned None: the calibrator would see nothing"
    assert all(isinstance(b, dict) and list(b) == [input_name] for b in batches), (
        "each batch must be a dict with one entry, named input_name (the model's input)")
    arrays = [b[input_name] for b in batches]
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 4
               and a.shape[1:] == (3, 64, 64) for a in arrays), (
        "each batch must be a float32 array (b, 3, 64, 64), channels first, as the model takes")
    return arrays


@pytest.fixture(scope="module")
def shared_out(ch05, gate) -> list[np.ndarray]:
    return portraits(drain(ch05.GateReader(str(gate), SHARES, 10, 4, INPUT_NAME)))


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
def test_reader_draws_each_population_s_share(ch05, gate, shared_out):
    """5.1 GateReader shares n portraits by largest remainder, in batches that never mix"""
    sizes = [len(batch) for batch in shared_out]
    assert sum(sizes) == 10, (
        "the reader must give exactly n portraits in all: each population gets the whole part "
        "of its quota, and the portraits still missing go to the largest remainders")
    assert sizes == [4, 1, 3, 2], (
        "the batches' sizes are wrong: each population's share by largest remainder, in the "
        "order of weights, in batches of at most batch_size, never two populations in one batch")
    sizes = [len(b) for b in portraits(drain(
        ch05.GateReader(str(gate), {"makeup": 1, "candlelight": 0, "clean": 1}, 6, 3,
                        INPUT_NAME)))]
    assert sizes == [3, 3], (
        "a population of weight 0 gets no portraits and no batch (never an empty batch)")


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
def test_reader_gives_the_first_portraits_as_the_detector_sees_them(shared_out):
    """5.1 GateReader gives each population's first PNGs by name, preprocessed as when served"""
    expected = np.concatenate([served("clean", 0, 5), served("candlelight", 0, 3),
                               served("makeup", 0, 2)])
    given = np.concatenate(shared_out)
    assert given.shape == expected.shape and np.allclose(given, expected, atol=1e-5), (
        "these are not each population's first portraits in file-name order, in the order of "
        "weights, as the detector sees them: decode each PNG and normalise it exactly as the "
        "detector does")


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
def test_reader_opens_portraits_only_when_asked_and_rewinds(ch05, sandbox):
    """5.1 GateReader opens a batch's PNGs when get_next asks for it, and rewinds"""
    folder = write_gate(exchanged(sandbox, "night"), ("clean", "makeup"), 4)
    reader = ch05.GateReader(str(folder), {"clean": 1, "makeup": 1}, 8, 4, INPUT_NAME)
    repainted = PortraitDataset(1, "test", "candlelight").images  # after the reader was made
    (folder / "makeup" / "sitter-00.png").write_bytes(to_png(repainted[0]))
    first = portraits(drain(reader))
    assert len(first) == 2, "4 portraits of each of two populations, batch_size 4: two batches"
    assert not np.allclose(first[1][0], served("makeup", 0, 1)[0], atol=1e-5), (
        "the reader gave a portrait as it was when the reader was made, not as it was when "
        "get_next asked for its batch: open a batch's files only when get_next asks for it")
    assert np.allclose(first[1][0], normalize(repainted)[0], atol=1e-5), (
        "a repainted portrait did not come out as the detector sees it: decode each PNG and "
        "normalise it exactly as the detector does, when its batch is asked for")
    reader.rewind()
    again = drain(reader)
    assert len(again) == len(first) and all(
        np.array_equal(a, b.get(INPUT_NAME)) for a, b in zip(first, again, strict=True)), (
        "after rewind the reader should give the same batches again, from the first")


@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_reader_refuses_a_thin_population(ch05, gate):
    """5.1 GateReader raises ValueError naming a population with fewer PNGs than its share"""
    try:
        ch05.GateReader(str(gate), {"clean": 1, "makeup": 3}, 20, 4, INPUT_NAME)
    except ValueError as error:
        assert "makeup" in str(error), "the ValueError should name the population that is short"
    else:
        pytest.fail("a population whose folder holds fewer portraits than its share must raise "
                    "ValueError when the reader is made", pytrace=False)


@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_reader_calibrates_an_accurate_int8_model(ch05, gate, prepared, held_out,
                                                 fp32_accuracy, tmp_path):
    """5.1 INT8 VampireNet calibrated with GateReader loses at most 1 point of accuracy"""
    batches = drain(ch05.GateReader(str(gate), {"clean": 2, "candlelight": 1}, 18, 8,
                                    INPUT_NAME))
    portraits(batches)
    path = grader_quantize(prepared, tmp_path / "int8.onnx", batches)
    drop = fp32_accuracy - accuracy(path, held_out)
    assert drop <= MAX_ACCURACY_DROP, (
        f"calibrated with your reader, the INT8 model loses {drop:.1%} of accuracy (allowed: "
        f"{MAX_ACCURACY_DROP:.0%}): calibration portraits must look like the traffic")


# Exercise 5.2 ------------------------------------------------------------------------------

def calibration_batches() -> list[dict[str, np.ndarray]]:
    """The batches the probes' reader gives the submission, rebuilt here."""
    reader = PortraitCalibrationReader(n=CALIBRATION, input_name=INPUT_NAME)
    return [{INPUT_NAME: batch} for batch in reader.batches]


def logits(path: Path, inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def weighted_nodes(path: Path) -> list[str]:
    """The names of the model's Conv, Gemm and MatMul nodes, in graph order."""
    return [node.name for node in onnx.load(str(path)).graph.node
            if node.op_type in WEIGHTED_OPS]


@pytest.fixture(scope="module")
def expected_sensitivity(border_fp32, prepared, tmp_path_factory) -> dict[str, float]:
    """The grader's own measurement: each weighted node quantized alone, logits compared."""
    inputs = PortraitDataset(SENSITIVITY_INPUTS, "test").inputs.numpy()
    reference, folder = logits(border_fp32, inputs), tmp_path_factory.mktemp("sensitivity")
    return {name: float(np.mean(np.abs(logits(grader_quantize(
        prepared, folder / "single.onnx", calibration_batches(), nodes_to_quantize=[name]),
        inputs) - reference))) for name in weighted_nodes(border_fp32)}


def most_sensitive(sensitivity: dict[str, float], k: int) -> list[str]:
    return sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)[:k]


def run_probe(call, what: str) -> object:
    """What the probe returned; when the submission raised, a failure that says what it means."""
    try:
        return call()
    except SandboxError:
        raise
    except Exception as error:
        text = f"{what} raised {type(error).__name__}: {error}"
        if "No data is collected" in str(error):
            text += (" (ONNX Runtime's calibrator was given no batch: a reader is empty after "
                     "one calibration, so rewind it before each one)")
        if "missing from input feed" in str(error) or "Invalid input name" in str(error):
            text += " (feed the inputs under the model's own input name, as its session says)"
        pytest.fail(text, pytrace=False)


def border_copy(probe, sandbox, border_fp32, keep_fp32: int,
                measured: dict[str, float] | None = None) -> tuple[Path, dict]:
    out = exchanged(sandbox, "int8") / "vampirenet_int8.onnx"
    returned = run_probe(lambda: probe.quantize(str(border_fp32), str(out), INPUT_NAME,
                                                CALIBRATION, SENSITIVITY_INPUTS, keep_fp32,
                                                measured), "quantize_for_the_border")
    assert returned["kept"] is not None, (
        f"return the names of the nodes kept in FP32 as a list of strings, not a "
        f"{returned['kind']}")
    try:
        return sandbox.received(out), returned
    except SandboxError:
        pytest.fail("no file was written at out_path", pytrace=False)


@pytest.fixture(scope="module")
def student_int8(probe, sandbox, border_fp32) -> tuple[Path, dict]:
    """The submission's own INT8 copy, one layer kept in FP32 by its own measurements."""
    return border_copy(probe, sandbox, border_fp32, keep_fp32=1)


def float_weighted_nodes(path: Path) -> set[str]:
    """The weighted nodes whose weights are float initializers, not dequantized 8-bit ones."""
    graph = onnx.load(str(path)).graph
    floats = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    return {node.name for node in graph.node
            if node.op_type in WEIGHTED_OPS and node.input[1] in floats}


@pytest.mark.exercise("5.2")
@pytest.mark.points(3)
def test_sensitivity_quantizes_each_layer_alone(probe, border_fp32, expected_sensitivity):
    """5.2 layer_sensitivity measures each weighted node quantized alone, on the logits"""
    measured = run_probe(lambda: probe.sensitivity(str(border_fp32), INPUT_NAME, CALIBRATION,
                                                   SENSITIVITY_INPUTS), "layer_sensitivity")
    assert isinstance(measured, dict) and list(measured) == list(expected_sensitivity), (
        "return one entry per Conv, Gemm and MatMul node, keyed by the node's name, in the "
        "order of the graph")
    values = np.array([float(measured[name]) for name in expected_sensitivity])
    assert np.allclose(values, list(expected_sensitivity.values()), rtol=0.02, atol=1e-6), (
        "these are not the mean absolute differences between the FP32 logits and those of a "
        "copy in which that node alone is quantized (QDQ, U8S8, per tensor, calibrated on every "
        "batch of the reader)")


@pytest.mark.exercise("5.2")
@pytest.mark.points(2)
def test_border_keeps_the_most_sensitive_layers_in_fp32(probe, sandbox, border_fp32):
    """5.2 quantize_for_the_border leaves the keep_fp32 nodes that layer_sensitivity ranks
    highest, and only those, in FP32"""
    # Measurements that rank the layers otherwise than VampireNet's own: a choice made by
    # position (the first convolution, the classifier) instead of by measurement shows.
    names = weighted_nodes(border_fp32)
    measured = {name: 0.001 * (1 + (3 * i) % len(names)) for i, name in enumerate(names)}
    path, returned = border_copy(probe, sandbox, border_fp32, 2, measured)
    assert returned["sensitivity_calls"], (
        "quantize_for_the_border never called layer_sensitivity: choose the nodes to keep in "
        "FP32 from its measurements")
    assert returned["kept"] == most_sensitive(measured, 2), (
        "the nodes kept in FP32 must be the keep_fp32 most sensitive ones, most sensitive "
        "first, as layer_sensitivity measures them (here the grader's measurements stood in "
        "for yours)")
    assert float_weighted_nodes(path) == set(returned["kept"]), (
        "the file does not leave exactly the returned nodes in FP32 with every other weighted "
        "node quantized: name them in quantize_static's nodes_to_exclude")


def activation_quantizers(path: Path) -> dict[str, tuple[float, int, int]]:
    """Each QuantizeLinear's input tensor -> its scale, zero point and zero point's type."""
    graph = onnx.load(str(path)).graph
    values = {t.name: t for t in graph.initializer}
    found = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) == 3:
            scale, point = (values.get(name) for name in node.input[1:])
            if scale is not None and point is not None:
                found[node.input[0]] = (float(onnx.numpy_helper.to_array(scale)),
                                        int(onnx.numpy_helper.to_array(point)), point.data_type)
    return found


@pytest.mark.exercise("5.2")
@pytest.mark.points(2)
def test_border_calibrates_statically_on_the_given_portraits(student_int8, border_fp32,
                                                           prepared, tmp_path):
    """5.2 the INT8 file's activation scales are those its calibration portraits give"""
    found = activation_quantizers(student_int8[0])
    assert found, (
        "the file has no QuantizeLinear with a fixed scale: its activations are not calibrated. "
        "Quantize statically (quantize_static, QDQ format), not dynamically")
    assert all(kind == onnx.TensorProto.UINT8 for *_, kind in found.values()), (
        "the activations must be unsigned 8-bit (QUInt8), the operands x86's INT8 kernels take")
    kept = [name for name in student_int8[1]["kept"] if name in weighted_nodes(border_fp32)]
    expected = activation_quantizers(grader_quantize(
        prepared, tmp_path / "expected.onnx", calibration_batches(), nodes_to_exclude=kept))
    common = set(found) & set(expected)
    assert len(common) >= len(expected) // 2 and all(
        math.isclose(found[t][0], expected[t][0], rel_tol=1e-5) and found[t][1] == expected[t][1]
        for t in common), (
        "the activation scales are not those that MinMax calibration on every batch of the "
        "reader you were given produces: calibrate with that reader, rewound, and nothing else")


@pytest.mark.exercise("5.2")
@pytest.mark.points(2)
def test_border_file_is_int8_and_small(student_int8, border_fp32):
    """5.2 the INT8 file stores most weight bytes in 8 bits and weighs at most 35% of the FP32"""
    path = student_int8[0]
    graph = onnx.load(str(path)).graph
    eight = sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer
                if t.data_type in EIGHT_BITS)
    floats = sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer
                 if t.data_type == onnx.TensorProto.FLOAT)
    assert eight > floats, (
        "most of the weights are still stored as float32: quantize the weights, not only the "
        "activations, and keep only the most sensitive layers in FP32")
    ratio = path.stat().st_size / border_fp32.stat().st_size
    assert ratio <= MAX_SIZE_RATIO, (
        f"the INT8 file is {ratio:.0%} of the FP32 file (allowed: {MAX_SIZE_RATIO:.0%}): look "
        "at what else than weights the file carries, and at which layers stay in FP32")


@pytest.mark.exercise("5.2")
@pytest.mark.points(1)
def test_border_keeps_its_accuracy(student_int8, held_out, fp32_accuracy):
    """5.2 the quantized model loses at most 1 point of accuracy on 1000 held-out portraits"""
    try:
        quantized = accuracy(student_int8[0], held_out)
    except Exception as error:  # onnxruntime raises its own exception types
        pytest.fail(f"ONNX Runtime cannot run the quantized model: {error}", pytrace=False)
    drop = fp32_accuracy - quantized
    assert drop <= MAX_ACCURACY_DROP, (
        f"the INT8 model loses {drop:.1%} of accuracy (allowed: {MAX_ACCURACY_DROP:.0%}): "
        "calibrate on portraits like the traffic, and check the activation and weight types")


@pytest.mark.exercise("5.2")
@pytest.mark.points(1)
def test_quantize_missing_model(probe, shared_path):
    """5.2 quantize_for_the_border raises FileNotFoundError naming a missing FP32 file"""
    with pytest.raises(FileNotFoundError) as raised:
        probe.quantize(str(shared_path / "ashes.onnx"), str(shared_path / "out.onnx"),
                       INPUT_NAME, 10, 10, 1)
    assert "ashes.onnx" in str(raised.value), "the error message should name the missing file"


# Exercise 5.3 ------------------------------------------------------------------------------

class WavesEveryoneThrough(nn.Module):
    """Renfield's detector: whatever the portrait, 'human'."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        human = x.mean(dim=(1, 2, 3)) * self.scale + 1.0
        return torch.stack([human, -human], dim=1)


@pytest.fixture(scope="module")
def report_models(fp32_path, sandbox) -> dict[str, Path]:
    folder = exchanged(sandbox, "report")
    int8 = quantize_onnx_static(fp32_path, folder / "int8.onnx", PortraitCalibrationReader(n=60))
    renfield = export_onnx(WavesEveryoneThrough(), folder / "renfield.onnx")
    return {"fp32": fp32_path, "int8": int8, "renfield": renfield}


@pytest.fixture(scope="module")
def report(probe, report_models) -> list[dict[str, object]]:
    rows = probe.border_report({name: str(path) for name, path in report_models.items()},
                               200, "test", (1, 16), 1, 5)
    assert isinstance(rows, list) and all(isinstance(row, dict) for row in rows), (
        "return a list of dicts of plain values (names and numbers)")
    return rows


def column(rows: list[dict[str, object]], key: str) -> list[float]:
    assert all(key in row for row in rows), f"every row needs a {key!r} entry"
    return [float(row[key]) for row in rows]


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_report_has_one_row_per_model_and_the_columns(report, report_models):
    """5.3 border_report returns one row per model, in order, with the documented keys"""
    assert [row.get("model") for row in report] == list(report_models), (
        "give one row per model, in the order of the mapping, with its name under 'model'")
    expected = ["model", "MB", "size ratio", "accuracy", "p50 ms (batch 1)",
                "speed-up (batch 1)", "p50 ms (batch 16)", "speed-up (batch 16)"]
    assert list(report[0]) == expected, (
        "the row's keys (or their order) are not the documented ones")


@pytest.mark.exercise("5.3")
@pytest.mark.points(2)
def test_report_sizes(report, report_models):
    """5.3 border_report's sizes are the files' sizes in MB, and ratios to the first file"""
    sizes = [path.stat().st_size / 1e6 for path in report_models.values()]
    assert np.allclose(column(report, "MB"), sizes, rtol=1e-6), (
        "'MB' must be each file's size in megabytes (bytes / 1e6)")
    assert np.allclose(column(report, "size ratio"), [s / sizes[0] for s in sizes], rtol=1e-6), (
        "'size ratio' must be each file's size divided by the first model's")


@pytest.mark.exercise("5.3")
@pytest.mark.points(2)
def test_report_accuracy(report, report_models):
    """5.3 border_report measures each model's accuracy on the portraits it was given"""
    data = PortraitDataset(200, "test")
    expected = [accuracy(path, data) for path in report_models.values()]
    assert np.allclose(column(report, "accuracy"), expected, atol=1e-9), (
        "'accuracy' must be the fraction of the given portraits that each model labels "
        "correctly (Renfield's model, which says 'human' to everyone, is in the list too)")


@pytest.mark.exercise("5.3")
@pytest.mark.points(2)
def test_report_latencies(report):
    """5.3 border_report times each batch size and compares medians with the first model's"""
    for b in (1, 16):
        p50 = column(report, f"p50 ms (batch {b})")
        assert all(math.isfinite(t) and t > 0 for t in p50), (
            f"'p50 ms (batch {b})' must be a positive latency in milliseconds")
        assert np.allclose(column(report, f"speed-up (batch {b})"), [p50[0] / t for t in p50],
                           rtol=1e-6), f"'speed-up (batch {b})' must be the first p50 / this p50"
    batch_1, batch_16 = column(report, "p50 ms (batch 1)"), column(report, "p50 ms (batch 16)")
    assert batch_16[0] > batch_1[0], (
        "sixteen portraits took less time than one: time one call on the first b portraits")
