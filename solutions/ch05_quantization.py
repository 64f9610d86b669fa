"""Chapter 5 exercises: quantization.

Fill in the classes and the functions below, then grade them with

    pytest autograder/test_ch05_quantization.py
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from vampire_detector.bench import time_calls
from vampire_detector.dataset import PortraitDataset
from vampire_detector.images import from_png, normalize
from vampire_detector.ort_detector import OrtDetector

# The operators that carry weights: the ones whose precision a sensitivity study compares.
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")


class GateReader(CalibrationDataReader):
    """Exercise 5.1: a stratified calibration sample, streamed from the gate's folders of PNGs.

    An INT8 model only represents the activation ranges it saw in calibration, so the sample must
    look like the gate's traffic. ``folder`` holds one sub-folder per population (``clean/``,
    ``candlelight/``, ``makeup/``), each with PNG portraits recorded at the gate; ``weights``
    maps the populations to draw from to their share of the traffic (non-negative numbers with a
    positive sum, not necessarily summing to 1).

    - **How many.** ``n`` portraits in all, shared by largest remainder: population ``p``'s quota
      is ``n * weights[p] / sum(weights)``; each gets the whole part of its quota, and the
      portraits still missing go, one each, to the largest fractional parts (on a tie, to the
      population that comes first in ``weights``).
    - **Which.** Each population's first portraits in file-name order (``*.png`` files only).
      Raise ``ValueError`` naming the population when its folder holds fewer than its share.
    - **How.** Population by population, in the order of ``weights``, at most ``batch_size``
      portraits per batch and never two populations in one batch (a batch that upsets the
      calibrator then names its population). Each batch is ``{input_name: batch}``, ``batch`` a
      float32 ``(b, 3, 64, 64)`` array: the PNGs preprocessed exactly as the detector serves one.
    - **When.** The gate's folders can hold far more than memory: open a batch's files only when
      ``get_next`` asks for that batch. ``get_next`` returns None after the last batch;
      ``rewind`` starts again from the first.
    """

    def __init__(self, folder: str | Path, weights: Mapping[str, float], n: int,
                 batch_size: int = 16, input_name: str = "images"):
        # BEGIN SOLUTION
        # Hint: vampire_detector.images holds the detector's own decoding and normalisation.
        total = sum(weights.values())
        quotas = {population: n * weight / total for population, weight in weights.items()}
        shares = {population: math.floor(quota) for population, quota in quotas.items()}
        by_remainder = sorted(quotas, key=lambda p: quotas[p] - shares[p], reverse=True)
        for population in by_remainder[:n - sum(shares.values())]:  # sorted() is stable
            shares[population] += 1
        self.batches: list[list[Path]] = []
        for population, share in shares.items():
            files = sorted((Path(folder) / population).glob("*.png"))
            if len(files) < share:
                raise ValueError(f"{population} holds {len(files)} portraits, fewer than its "
                                 f"share of {share}")
            self.batches += [files[start:min(start + batch_size, share)]
                             for start in range(0, share, batch_size)]
        self.input_name = input_name
        self.cursor = 0
        # END SOLUTION

    def get_next(self) -> dict[str, np.ndarray] | None:
        # BEGIN SOLUTION
        if self.cursor >= len(self.batches):
            return None
        files = self.batches[self.cursor]
        self.cursor += 1
        return {self.input_name: normalize(np.stack([from_png(f.read_bytes()) for f in files]))}
        # END SOLUTION

    def rewind(self) -> None:
        # BEGIN SOLUTION
        self.cursor = 0
        # END SOLUTION


def layer_sensitivity(fp32_path: str | Path, reader: CalibrationDataReader,
                      inputs: np.ndarray) -> dict[str, float]:
    """Exercise 5.2: how much each weighted layer, quantized alone, moves the model's logits.

    For each ``Conv``, ``Gemm`` and ``MatMul`` node of the ONNX model at ``fp32_path`` (see
    ``WEIGHTED_OPS``), in graph order: quantize that node and no other, statically, in the QDQ
    format with unsigned 8-bit activations and signed 8-bit weights, one scale per tensor,
    calibrated on every batch of ``reader`` (which has a ``rewind``); run the result and the
    FP32 model on ``inputs`` (float32 ``(N, 3, 64, 64)``, fed under the model's own input name).
    The node's sensitivity is the mean absolute difference between the two models' logits.
    Return ``{node name: sensitivity}``.
    """
    # BEGIN SOLUTION
    # Hint: pre-process first (quant_pre_process); quantize_static's nodes_to_quantize names the
    # Hint: only nodes it may quantize.
    def logits(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: inputs})[0]

    fp32_path = Path(fp32_path)
    names = [node.name for node in onnx.load(str(fp32_path)).graph.node
             if node.op_type in WEIGHTED_OPS]
    reference = logits(fp32_path)
    sensitivity = {}
    with tempfile.TemporaryDirectory() as scratch:
        prepared, single = Path(scratch) / "prepared.onnx", Path(scratch) / "single.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        for name in names:
            reader.rewind()
            quantize_static(str(prepared), str(single), reader, quant_format=QuantFormat.QDQ,
                            per_channel=False, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, nodes_to_quantize=[name])
            sensitivity[name] = float(np.mean(np.abs(logits(single) - reference)))
    return sensitivity
    # END SOLUTION


def quantize_for_the_border(fp32_path: str | Path, out_path: str | Path,
                            reader: CalibrationDataReader, inputs: np.ndarray,
                            keep_fp32: int = 1) -> list[str]:
    """Exercise 5.2: a static INT8 copy that leaves the most sensitive layers in FP32.

    Call ``layer_sensitivity(fp32_path, reader, inputs)`` (the grader may stand its own
    measurements in for it), then write to ``out_path`` a statically quantized copy of the model
    at ``fp32_path`` in which the ``keep_fp32`` most sensitive nodes stay in float and every
    other weighted node is quantized, with the same settings and calibration as in
    ``layer_sensitivity``. The file must weigh at most 35% of the FP32 file and keep its
    accuracy within 1 point. Return the names of the nodes kept in FP32, most sensitive first.
    Raise ``FileNotFoundError`` naming ``fp32_path`` when it does not exist.
    """
    # BEGIN SOLUTION
    # Hint: quantize_static's nodes_to_exclude names the nodes it must leave in float.
    # Hint: the exporter stores a stack trace in every node's metadata_props; the border does not
    # Hint: need them, and in a small model they weigh more than you would think.
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise FileNotFoundError(f"no ONNX model at {fp32_path}")
    sensitivity = layer_sensitivity(fp32_path, reader, inputs)
    kept = sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)[:keep_fp32]
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        reader.rewind()
        quantize_static(str(prepared), str(out_path), reader, quant_format=QuantFormat.QDQ,
                        per_channel=False, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=kept)
    model = onnx.load(str(out_path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(out_path))
    return kept
    # END SOLUTION


def border_report(models: Mapping[str, str | Path], data: PortraitDataset,
                  batch_sizes: Sequence[int] = (1, 16), threads: int = 1,
                  iters: int = 10) -> list[dict[str, object]]:
    """Exercise 5.3: size, latency and accuracy of several ONNX models, one row per model.

    Each row is a dict with, in this order:

    - ``"model"``: the model's name (the key in ``models``);
    - ``"MB"``: the file size in megabytes (1 MB = 1e6 bytes);
    - ``"size ratio"``: the file size divided by that of the first model;
    - ``"accuracy"``: the fraction of ``data`` (``data.images``, ``data.labels``) it labels right;
    - for each ``b`` in ``batch_sizes``: ``f"p50 ms (batch {b})"``, the median latency of one call
      on the first ``b`` images, measured with ``vampire_detector.bench.time_calls`` on a
      ``threads``-thread ``OrtDetector``, and ``f"speed-up (batch {b})"``, the first model's
      median divided by this one's.
    """
    # BEGIN SOLUTION
    # Hint: OrtDetector(path, threads=threads).probabilities(images) gives (N, 2) probabilities.
    rows: list[dict[str, object]] = []
    for name, path in models.items():
        detector = OrtDetector(path, threads=threads)
        predicted = detector.probabilities(data.images).argmax(axis=1)
        row: dict[str, object] = {
            "model": name, "MB": Path(path).stat().st_size / 1e6,
            "accuracy": float(np.mean(predicted == data.labels.numpy()))}
        row["size ratio"] = row["MB"] / (rows[0]["MB"] if rows else row["MB"])
        for b in batch_sizes:
            images = data.images[:b]
            timing = time_calls(lambda d=detector, x=images: d.probabilities(x), warmup=2,
                                iters=iters, items=b)
            row[f"p50 ms (batch {b})"] = timing.p50
            first = rows[0][f"p50 ms (batch {b})"] if rows else timing.p50
            row[f"speed-up (batch {b})"] = first / timing.p50
        keys = ["model", "MB", "size ratio", "accuracy"] + [
            k for b in batch_sizes for k in (f"p50 ms (batch {b})", f"speed-up (batch {b})")]
        rows.append({key: row[key] for key in keys})
    return rows
    # END SOLUTION
