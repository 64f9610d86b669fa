"""INT8 for the border box: ONNX Runtime static quantization, calibrated on portraits.

Static quantization fixes the scale of every activation ahead of time, from a few hundred
*calibration* portraits run through the float model, so that at the border each convolution runs
on 8-bit integers from input to output. The calibration portraits must look like the traffic the
model will see: the training split, preprocessed by ``tensors.to_batch``, as at serving time.

The choice that decides whether INT8 is faster at all on x86 is the operand types: unsigned 8-bit
activations with signed weights (U8S8), the layout of the VNNI instructions. ONNX Runtime's own
default, signed activations, was barely faster than FP32 in Chapter 5's measurements. The file is
also pre-processed first (``quant_pre_process``), as ONNX Runtime recommends. The result is an
ordinary ``.onnx`` file that ``OrtDetector`` serves unchanged.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from vampire_detector.dataset import PortraitDataset
from vampire_detector.onnx_export import INPUT_NAME
from vampire_detector.paths import require_file

QUANT_FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
# Operators that only exist in quantized graphs: QDQ pairs or integer kernels.
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                           "QLinearAdd", "QLinearGlobalAveragePool", "QGemm", "ConvInteger",
                           "MatMulInteger", "DynamicQuantizeLinear"})
INT8_TYPES = frozenset({onnx.TensorProto.INT8, onnx.TensorProto.UINT8})


class PortraitCalibrationReader(CalibrationDataReader):
    """Feeds ``n`` training portraits, in batches, to ONNX Runtime's calibrator.

    The calibrator calls ``get_next`` until it returns None and records the range of every
    activation; ``rewind`` lets the same reader calibrate a second model.
    """

    def __init__(self, n: int = 200, batch_size: int = 20, split: str = "train",
                 input_name: str = INPUT_NAME):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need at least one portrait and one per batch, got n={n}, "
                             f"batch_size={batch_size}")
        inputs = PortraitDataset(n, split).inputs.contiguous().numpy()
        self.batches = [inputs[i:i + batch_size] for i in range(0, n, batch_size)]
        self.input_name = input_name
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1]}

    def rewind(self) -> None:
        self.position = 0

    def __len__(self) -> int:
        return len(self.batches)


@dataclass(frozen=True)
class StaticSettings:
    """How to quantize; the defaults were the fastest (with others tied) in Chapter 5 on x86."""

    quant_format: str = "qdq"  # or "qoperator": QLinearConv and friends instead of Q/DQ pairs
    per_channel: bool = False  # one scale per output channel: more accurate, often slower
    activations: str = "uint8"  # U8S8: unsigned activations, signed weights (VNNI's layout)
    weights: str = "int8"
    reduce_range: bool = False  # 7-bit weights, for CPUs without VNNI that overflow otherwise
    preprocess: bool = True  # quant_pre_process first; without it INT8 can be slower than FP32
    strip_metadata: bool = True  # drop the exporter's per-node debugging notes

    def __post_init__(self) -> None:
        if self.quant_format not in QUANT_FORMATS:
            raise ValueError(f"quant_format must be one of {sorted(QUANT_FORMATS)}, "
                             f"got {self.quant_format!r}")
        for name in (self.activations, self.weights):
            if name not in TYPES:
                raise ValueError(f"activation and weight types must be one of {sorted(TYPES)}, "
                                 f"got {name!r}")


def preprocess(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Shape inference and graph optimisation, the step ONNX Runtime asks for before quantizing."""
    quant_pre_process(str(fp32_path), str(out_path))
    return Path(out_path)


def quantize_onnx_static(fp32_path: str | Path, out_path: str | Path,
                         calibration: CalibrationDataReader | None = None,
                         settings: StaticSettings = StaticSettings()) -> Path:
    """Write a statically quantized INT8 copy of the FP32 model at ``fp32_path``.

    ``calibration`` defaults to 200 training portraits. The intermediate pre-processed file goes
    to a temporary folder and is removed. The INT8 file is written without the exporter's
    debugging notes (``strip_debug_metadata``).
    """
    fp32_path, out_path = require_file(fp32_path), Path(out_path)
    if calibration is None:  # not ``or``: a reader's truth value would ask for its length
        calibration = PortraitCalibrationReader()
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch:
        source = preprocess(fp32_path, Path(scratch) / "pre.onnx") if settings.preprocess \
            else fp32_path
        quantize_static(str(source), str(out_path), calibration,
                        quant_format=QUANT_FORMATS[settings.quant_format],
                        per_channel=settings.per_channel, reduce_range=settings.reduce_range,
                        activation_type=TYPES[settings.activations],
                        weight_type=TYPES[settings.weights])
    return strip_debug_metadata(out_path) if settings.strip_metadata else out_path


def quantize_onnx_dynamic(fp32_path: str | Path, out_path: str | Path) -> Path:
    """INT8 weights, activations quantized on the fly at every call: no calibration needed.

    The file is pre-processed first: the quantizer's shape inference rejects the exporter's
    recorded shapes as they are.
    """
    fp32_path, out_path = require_file(fp32_path), Path(out_path)
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch:
        source = preprocess(fp32_path, Path(scratch) / "pre.onnx")
        quantize_dynamic(str(source), str(out_path), weight_type=QuantType.QInt8)
    return strip_debug_metadata(out_path)


def strip_debug_metadata(path: str | Path) -> Path:
    """Drop the exporter's per-node notes (stack traces, module names) from the file at ``path``.

    They help to debug an export and weigh nothing next to a ResNet's weights, but in a small
    INT8 model they are a third of the file. The graph and its results do not change.
    """
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))
    return Path(path)


@dataclass(frozen=True)
class Int8Summary:
    """How much of an ONNX graph is really 8-bit."""

    quantized_ops: dict[str, int]  # quantization-only operator -> count
    int8_initializers: int
    float_initializers: int
    int8_bytes: int
    float_bytes: int

    @property
    def is_int8(self) -> bool:
        """Quantized operators present, and most weight bytes stored as 8-bit integers."""
        return bool(self.quantized_ops) and self.int8_bytes > self.float_bytes


def int8_summary(path: str | Path) -> Int8Summary:
    """Count the quantized operators and the 8-bit weights of the ONNX model at ``path``."""
    graph = onnx.load(str(path)).graph
    ops = Counter(node.op_type for node in graph.node if node.op_type in QUANTIZED_OPS)
    int8 = [t for t in graph.initializer if t.data_type in INT8_TYPES]
    floats = [t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    return Int8Summary(dict(ops.most_common()), len(int8), len(floats),
                       sum(_nbytes(t) for t in int8), sum(_nbytes(t) for t in floats))


def _nbytes(tensor: onnx.TensorProto) -> int:
    return onnx.numpy_helper.to_array(tensor).nbytes
