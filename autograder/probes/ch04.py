"""Chapter 4's probes: the submission's export, session and parity report, on VampireNet."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from vampire_detector.weights import load_model


def _ch04():
    return importlib.import_module("ch04_onnx")


def _model(train: bool = False) -> torch.nn.Module:
    model = load_model("vampirenet", device=torch.device("cpu"))
    return model.train() if train else model


def export(path: str) -> dict[str, object]:
    """Export a fresh VampireNet with ``export_with_dynamic_batch`` to ``path``; say what came
    back (the grader reads the file itself)."""
    returned = _ch04().export_with_dynamic_batch(_model(), Path(path))
    return {"kind": type(returned).__name__, "is_path": isinstance(returned, Path),
            "path": str(returned) if isinstance(returned, (str, Path)) else None}


def session(path: str, threads: int) -> dict[str, object]:
    """``make_session(path, threads=threads)``, described: its options, providers and whether
    it runs a batch of three."""
    made = _ch04().make_session(Path(path), threads=threads)
    if not isinstance(made, ort.InferenceSession):
        return {"kind": type(made).__name__}
    options = made.get_session_options()
    try:
        logits = made.run(None, {"images": np.zeros((3, 3, 64, 64), np.float32)})[0]
        shape = list(np.shape(logits))
    except Exception as error:  # onnxruntime raises its own exception types
        shape = f"{type(error).__name__}: {error}"
    return {"kind": "InferenceSession", "intra_op_num_threads": options.intra_op_num_threads,
            "graph_optimization_level": options.graph_optimization_level.name,
            "providers": list(made.get_providers()), "logits_shape": shape}


class DoctoredSession:
    """A real session whose answers drift by ``shift`` for one batch size only."""

    def __init__(self, session: ort.InferenceSession, bad_batch: int | None, shift: float):
        self.session, self.bad_batch, self.shift = session, bad_batch, shift

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, output_names, feeds):
        (inputs,) = feeds.values()
        outputs = self.session.run(output_names, feeds)
        if len(inputs) == self.bad_batch:
            outputs[0] = outputs[0] + self.shift
        return outputs


def parity(path: str, batch_sizes: tuple[int, ...], bad_batch: int | None = None,
           shift: float = 0.0, train: bool = False) -> dict[str, object]:
    """``parity_report`` of a fresh VampireNet (handed over in train mode when ``train``)
    against a CPU session of ``path`` whose logits drift by ``shift`` at ``bad_batch``."""
    cpu = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    given = cpu if bad_batch is None else DoctoredSession(cpu, bad_batch, shift)
    report = _ch04().parity_report(_model(train), given, batch_sizes=batch_sizes)
    return {"errors": {int(k): float(v) for k, v in dict(report.errors).items()},
            "worst_batch": report.worst_batch, "worst_error": float(report.worst_error),
            "ok": bool(report.ok)}
