"""Chapter 5 — Quantization and half precision.

The tests measure what your code produces, on VampireNet (whose weights ship with the course):
the quantized file's accuracy on 1000 held-out portraits (at most 1 point below the FP32 model),
its size (at most 35% of the FP32 file) and its graph (8-bit operators and weights).

Sealed: your code runs in a sandboxed process (the ``submission`` fixture); your reader's
batches and your files come back here (files through the sandbox's exchange folder), and are
measured here. The probes of ``autograder/probes/ch05.py`` hand your functions what the library
makes (a calibration reader, held-out portraits) there.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnxruntime.quantization import CalibrationDataReader
from torch import nn

from autograder.sandbox import SandboxError
from vampire_detector.dataset import PortraitDataset
from vampire_detector.onnx_export import export_onnx, export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.quantize import PortraitCalibrationReader, quantize_onnx_static

MAX_ACCURACY_DROP = 0.01  # one point of accuracy on the held-out portraits
MAX_SIZE_RATIO = 0.35  # of the FP32 file
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger", "QGemm"}
EIGHT_BITS = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}


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
def held_out() -> PortraitDataset:
    return PortraitDataset(1000, "test")


@pytest.fixture(scope="module")
def fp32_accuracy(fp32_path, held_out) -> float:
    return accuracy(fp32_path, held_out)


def accuracy(path: Path, data: PortraitDataset) -> float:
    predicted = OrtDetector(path, threads=1).probabilities(data.images).argmax(1)
    return float(np.mean(predicted == data.labels.numpy()))


class Replay(CalibrationDataReader):
    """The batches a reader gave, given again to the grader's own calibrator."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self.batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def drain(reader) -> list[dict[str, np.ndarray]]:
    """Every batch a calibration reader gives before it returns None (at most 1000)."""
    batches = []
    for _ in range(1000):
        batch = reader.get_next()
        if batch is None:
            return batches
        batches.append(batch)
    pytest.fail("get_next never returned None: the calibrator would loop forever", pytrace=False)


# Exercise 5.1 ------------------------------------------------------------------------------

NIGHT_AND_DAY = ("clean", "candlelight")


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
def test_reader_gives_every_portrait_once_then_none(ch05):
    """5.1 MixedPortraitReader gives n portraits per population in batches, then None"""
    batches = drain(ch05.MixedPortraitReader(n=45, batch_size=20, populations=NIGHT_AND_DAY))
    assert batches, "the first call of get_next returned None"
    assert all(isinstance(b, dict) and list(b) == ["images"] for b in batches), (
        "each batch must be a dict with one entry, named after the model's input: 'images'")
    assert [len(b["images"]) for b in batches] == [20, 20, 5] * 2, (
        "45 portraits of each of two populations, in batches of at most 20 that never mix "
        "populations, should come as batches of 20, 20 and 5, twice")
    assert all(b["images"].dtype == np.float32 and b["images"].shape[1:] == (3, 64, 64)
               for b in batches), "each batch must be a float32 array (b, 3, 64, 64)"


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
def test_reader_gives_preprocessed_training_portraits(ch05):
    """5.1 MixedPortraitReader's batches are each population's training portraits, preprocessed"""
    populations = ("candlelight", "makeup", "clean")
    batches = drain(ch05.MixedPortraitReader(n=12, batch_size=12, populations=populations))
    given = np.concatenate([b["images"] for b in batches])
    expected = np.concatenate([PortraitDataset(12, "train", population).inputs.numpy()
                               for population in populations])
    assert given.shape == expected.shape and np.allclose(given, expected, atol=1e-6), (
        "these are not the training portraits of each population, in the order given, as the "
        "model sees them: use the train split and exactly the serving preprocessing")


@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_reader_rewinds(ch05):
    """5.1 after rewind, MixedPortraitReader starts again from its first batch"""
    reader = ch05.MixedPortraitReader(n=20, batch_size=10, populations=NIGHT_AND_DAY)
    first = drain(reader)
    reader.rewind()
    again = drain(reader)
    assert len(again) == len(first) and all(
        np.array_equal(a["images"], b["images"]) for a, b in zip(first, again, strict=True)), (
        "after rewind the reader should give the same batches again, from the first")


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
def test_reader_calibrates_an_accurate_int8_model(ch05, fp32_path, held_out, fp32_accuracy,
                                                 tmp_path):
    """5.1 INT8 VampireNet calibrated with MixedPortraitReader loses at most 1 point of accuracy"""
    batches = drain(ch05.MixedPortraitReader(n=50, batch_size=25))
    assert all(isinstance(b, dict) and isinstance(b.get("images"), np.ndarray)
               for b in batches), "each batch must be a dict holding a numpy array 'images'"
    path = quantize_onnx_static(fp32_path, tmp_path / "int8.onnx", Replay(batches))
    drop = fp32_accuracy - accuracy(path, held_out)
    assert drop <= MAX_ACCURACY_DROP, (
        f"calibrated with your reader, the INT8 model loses {drop:.1%} of accuracy (allowed: "
        f"{MAX_ACCURACY_DROP:.0%}): calibration portraits must look like the traffic")


# Exercise 5.2 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student_int8(probe, sandbox, fp32_path) -> Path:
    out = exchanged(sandbox, "int8") / "vampirenet_int8.onnx"
    returned = probe.quantize(str(fp32_path), str(out), 100)
    assert returned["path"] is not None and Path(returned["path"]) == out, (
        "return the path of the quantized file")
    try:
        return sandbox.received(out)
    except SandboxError:
        pytest.fail("no file was written at out_path", pytrace=False)


@pytest.mark.exercise("5.2")
@pytest.mark.points(3)
def test_quantized_model_really_is_int8(student_int8):
    """5.2 the quantized graph has 8-bit operators, and most weight bytes are 8-bit integers"""
    graph = onnx.load(str(student_int8)).graph
    assert any(node.op_type in QUANTIZED_OPS for node in graph.node), (
        "the graph has no quantization operators (QuantizeLinear/DequantizeLinear, QLinearConv, "
        "ConvInteger, ...): nothing was quantized")
    eight = sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer
                if t.data_type in EIGHT_BITS)
    floats = sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer
                 if t.data_type == onnx.TensorProto.FLOAT)
    assert eight > floats, (
        "most of the weights are still stored as float32: quantize the weights, not only the "
        "activations")


@pytest.mark.exercise("5.2")
@pytest.mark.points(2)
def test_quantized_model_is_small(student_int8, fp32_path):
    """5.2 the quantized file weighs at most 35% of the FP32 file"""
    ratio = student_int8.stat().st_size / fp32_path.stat().st_size
    assert ratio <= MAX_SIZE_RATIO, (
        f"the INT8 file is {ratio:.0%} of the FP32 file (allowed: {MAX_SIZE_RATIO:.0%}); "
        "look at what else than weights the file carries")


@pytest.mark.exercise("5.2")
@pytest.mark.points(3)
def test_quantized_model_keeps_its_accuracy(student_int8, held_out, fp32_accuracy):
    """5.2 the quantized model loses at most 1 point of accuracy on 1000 held-out portraits"""
    try:
        quantized = accuracy(student_int8, held_out)
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
        probe.quantize(str(shared_path / "ashes.onnx"), str(shared_path / "out.onnx"), 10)
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
