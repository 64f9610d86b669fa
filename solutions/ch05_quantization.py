"""Chapter 5 exercises: quantization.

Fill in the class and the functions below, then grade them with

    pytest autograder/test_ch05_quantization.py
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from vampire_detector.bench import time_calls
from vampire_detector.dataset import PortraitDataset
from vampire_detector.ort_detector import OrtDetector


class MixedPortraitReader(CalibrationDataReader):
    """Exercise 5.1: calibration portraits from several populations, one population per batch.

    The border sees daylight and candle-lit travellers, and an INT8 model only represents the
    activation ranges it saw during calibration. Give ``n`` training portraits of each population
    in ``populations``, in that order, preprocessed exactly as at serving time (float32,
    normalised, ``(b, 3, 64, 64)``), as ``{"images": batch}`` with at most ``batch_size``
    portraits per batch and never two populations in one batch. ``get_next`` returns None once
    all have been given; ``rewind`` starts again from the first batch.
    """

    def __init__(self, n: int = 100, batch_size: int = 20,
                 populations: Sequence[str] = ("clean", "candlelight")):
        # BEGIN SOLUTION
        # Hint: PortraitDataset(n, "train", population).inputs is preprocessed by to_batch.
        self.batches = []
        for population in populations:
            inputs = PortraitDataset(n, "train", population).inputs.numpy()
            self.batches += [inputs[start:start + batch_size] for start in range(0, n, batch_size)]
        self.next_batch = 0
        # END SOLUTION

    def get_next(self) -> dict[str, np.ndarray] | None:
        # BEGIN SOLUTION
        if self.next_batch == len(self.batches):
            return None
        batch = self.batches[self.next_batch]
        self.next_batch += 1
        return {"images": batch}
        # END SOLUTION

    def rewind(self) -> None:
        # BEGIN SOLUTION
        self.next_batch = 0
        # END SOLUTION


def quantize_for_the_border(fp32_path: str | Path, out_path: str | Path,
                            reader: CalibrationDataReader) -> Path:
    """Exercise 5.2: write a statically quantized INT8 copy of the ONNX model at ``fp32_path``.

    Calibrate with ``reader``. The result must keep its accuracy within 1 point of the FP32
    model's, weigh at most 35% of the FP32 file, and really compute in 8 bits. Raise
    ``FileNotFoundError`` naming ``fp32_path`` when it does not exist. Return ``out_path``.
    """
    # BEGIN SOLUTION
    # Hint: onnxruntime.quantization has quant_pre_process and quantize_static.
    # Hint: the exporter stores a stack trace in every node's metadata_props; the border does not
    # Hint: need them, and in a small model they weigh more than you would think.
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise FileNotFoundError(f"no ONNX model at {fp32_path}")
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(str(prepared), str(out_path), reader, quant_format=QuantFormat.QDQ,
                        per_channel=False, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    model = onnx.load(str(out_path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(out_path))
    return out_path
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
