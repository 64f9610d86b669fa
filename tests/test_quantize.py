"""ONNX Runtime static INT8: the calibration reader, the quantized file, and what is in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vampire_detector.dataset import PortraitDataset
from vampire_detector.onnx_export import export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.quantize import (
    PortraitCalibrationReader,
    StaticSettings,
    int8_summary,
    quantize_onnx_dynamic,
    quantize_onnx_static,
)


@pytest.fixture(scope="module")
def fp32_path(tmp_path_factory) -> Path:
    return export_trained("vampirenet", tmp_path_factory.mktemp("fp32") / "vampirenet.onnx")


@pytest.fixture(scope="module")
def int8_path(fp32_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "vampirenet_int8.onnx"
    return quantize_onnx_static(fp32_path, out, PortraitCalibrationReader(n=100))


def accuracy(path: Path, data: PortraitDataset) -> float:
    predictions = OrtDetector(path, threads=1).probabilities(data.images).argmax(1)
    return float(np.mean(predictions == data.labels.numpy()))


def test_reader_feeds_training_portraits_in_batches_then_stops():
    reader = PortraitCalibrationReader(n=45, batch_size=20)
    batches = [reader.get_next() for _ in range(3)]
    assert reader.get_next() is None
    assert [len(b["images"]) for b in batches] == [20, 20, 5]
    expected = PortraitDataset(45, "train").inputs.numpy()
    assert np.array_equal(np.concatenate([b["images"] for b in batches]), expected)
    assert all(b["images"].flags.c_contiguous and b["images"].dtype == np.float32
               for b in batches)


def test_reader_rewinds_for_a_second_model():
    reader = PortraitCalibrationReader(n=10, batch_size=10)
    first = reader.get_next()["images"]
    assert reader.get_next() is None
    reader.rewind()
    assert np.array_equal(reader.get_next()["images"], first)


def test_reader_refuses_nonsense_sizes():
    with pytest.raises(ValueError, match="at least one"):
        PortraitCalibrationReader(n=0)


def test_settings_refuse_unknown_names():
    with pytest.raises(ValueError, match="quant_format"):
        StaticSettings(quant_format="qdp")
    with pytest.raises(ValueError, match="types"):
        StaticSettings(activations="int4")


def test_static_int8_is_small_integer_and_accurate(fp32_path, int8_path):
    summary = int8_summary(int8_path)
    assert summary.is_int8
    assert summary.quantized_ops.get("QuantizeLinear", 0) > 0
    assert int8_path.stat().st_size < 0.35 * fp32_path.stat().st_size
    test = PortraitDataset(500, "test")
    assert accuracy(int8_path, test) >= accuracy(fp32_path, test) - 0.01


def test_fp32_model_is_not_int8(fp32_path):
    summary = int8_summary(fp32_path)
    assert not summary.is_int8 and summary.quantized_ops == {} and summary.int8_bytes == 0


def test_qoperator_format_uses_integer_kernels(fp32_path, tmp_path):
    settings = StaticSettings(quant_format="qoperator", per_channel=True)
    path = quantize_onnx_static(fp32_path, tmp_path / "qop.onnx",
                                PortraitCalibrationReader(n=20), settings)
    summary = int8_summary(path)
    assert summary.is_int8 and "QLinearConv" in summary.quantized_ops


def test_dynamic_quantization_needs_no_calibration(fp32_path, tmp_path):
    path = quantize_onnx_dynamic(fp32_path, tmp_path / "dynamic.onnx")
    summary = int8_summary(path)
    assert summary.is_int8 and summary.int8_initializers > 0


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="export"):
        quantize_onnx_static(tmp_path / "absent.onnx", tmp_path / "out.onnx")
