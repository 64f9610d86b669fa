"""Chapter 5's probes: the submission's sensitivity study, quantizer and border report, given
what the library makes (a calibration reader, held-out portraits) and files in the exchange
folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from vampire_detector.dataset import PortraitDataset
from vampire_detector.quantize import PortraitCalibrationReader


def _ch05():
    return importlib.import_module("ch05_quantization")


def _reader_and_inputs(input_name: str, calibration: int, inputs: int):
    """The library's reader of ``calibration`` training portraits under ``input_name``, and
    ``inputs`` held-out portraits, preprocessed: what the grader rebuilds on its side."""
    reader = PortraitCalibrationReader(n=calibration, input_name=input_name)
    return reader, PortraitDataset(inputs, "test").inputs.numpy()


def sensitivity(fp32_path: str, input_name: str, calibration: int, inputs: int) -> object:
    """``layer_sensitivity`` of the file at ``fp32_path``; what it returned."""
    reader, held_out = _reader_and_inputs(input_name, calibration, inputs)
    return _ch05().layer_sensitivity(Path(fp32_path), reader, held_out)


def quantize(fp32_path: str, out_path: str, input_name: str, calibration: int, inputs: int,
             keep_fp32: int, measured: dict[str, float] | None = None) -> dict[str, object]:
    """``quantize_for_the_border`` with the library's reader; the names it says it kept in FP32
    (the grader reads the file itself). With ``measured``, the submission's ``layer_sensitivity``
    is replaced, for this call only, by one that returns those measurements: the choice of
    nodes is then graded apart from the measurement."""
    module = _ch05()
    reader, held_out = _reader_and_inputs(input_name, calibration, inputs)
    calls = []
    own = module.layer_sensitivity
    if measured is not None:
        def stand_in(*args: object, **kwargs: object) -> dict[str, float]:
            calls.append(len(args) + len(kwargs))
            return dict(measured)

        module.layer_sensitivity = stand_in
    try:
        kept = module.quantize_for_the_border(Path(fp32_path), Path(out_path), reader, held_out,
                                              keep_fp32)
    finally:
        module.layer_sensitivity = own
    plain = isinstance(kept, (list, tuple)) and all(isinstance(name, str) for name in kept)
    return {"kind": type(kept).__name__, "kept": list(kept) if plain else None,
            "sensitivity_calls": len(calls)}


def border_report(models: dict[str, str], n: int, split: str, batch_sizes: tuple[int, ...],
                  threads: int, iters: int) -> object:
    """``border_report`` of the files ``models`` on ``n`` portraits of ``split``; its rows."""
    data = PortraitDataset(n, split)
    return _ch05().border_report({name: Path(path) for name, path in models.items()}, data,
                                 batch_sizes=batch_sizes, threads=threads, iters=iters)
