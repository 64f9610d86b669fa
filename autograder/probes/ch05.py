"""Chapter 5's probes: the submission's quantizer and border report, given what the library
makes (a calibration reader, a set of held-out portraits) and files in the exchange folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from vampire_detector.dataset import PortraitDataset
from vampire_detector.quantize import PortraitCalibrationReader


def _ch05():
    return importlib.import_module("ch05_quantization")


def quantize(fp32_path: str, out_path: str, n: int) -> dict[str, object]:
    """``quantize_for_the_border`` calibrated by the library's reader of ``n`` portraits; what
    came back (the grader reads the file itself)."""
    returned = _ch05().quantize_for_the_border(Path(fp32_path), Path(out_path),
                                                PortraitCalibrationReader(n=n))
    return {"kind": type(returned).__name__,
            "path": str(returned) if isinstance(returned, (str, Path)) else None}


def border_report(models: dict[str, str], n: int, split: str, batch_sizes: tuple[int, ...],
                  threads: int, iters: int) -> object:
    """``border_report`` of the files ``models`` on ``n`` portraits of ``split``; its rows."""
    data = PortraitDataset(n, split)
    return _ch05().border_report({name: Path(path) for name, path in models.items()}, data,
                                 batch_sizes=batch_sizes, threads=threads, iters=iters)
