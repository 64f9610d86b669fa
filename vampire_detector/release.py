"""The model that ships: the production ResNet-18, exported to ONNX and quantized to INT8.

Chapters 4 and 5 chose it: ONNX Runtime for the lower overhead per call, static INT8 (U8S8,
calibrated on training portraits) for the integer instructions of the border box's processor.
The FP32 file is kept beside it, because the performance ledger measures both. Building takes
seconds once the weights are cached; files already in the folder are reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vampire_detector.model import PRODUCTION_ARCH
from vampire_detector.onnx_export import export_trained
from vampire_detector.quantize import quantize_onnx_static
from vampire_detector.train import ensure_weights


@dataclass(frozen=True)
class Release:
    fp32: Path
    int8: Path


def build_release(folder: str | Path, arch: str = PRODUCTION_ARCH) -> Release:
    """Export ``arch``'s trained weights to ``folder`` and quantize them, unless already done."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ensure_weights(arch)  # trains once per machine (about 90 s on two cores)
    fp32, int8 = folder / f"{arch}-fp32.onnx", folder / f"{arch}-int8.onnx"
    if not fp32.is_file():
        export_trained(arch, fp32)
    if not int8.is_file():
        quantize_onnx_static(fp32, int8)
    return Release(fp32, int8)
