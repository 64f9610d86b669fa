"""Chapter 4's probes: the submission's export, session and parity report, on VampireNet."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}


def _ch04():
    return importlib.import_module("ch04_onnx")


def _model(train: bool = False) -> torch.nn.Module:
    from vampire_detector.weights import load_model  # pulls torchvision in: only when needed

    model = load_model("vampirenet", device=torch.device("cpu"))
    return model.train() if train else model.eval()


def export(path: str) -> dict[str, object]:
    """Export a fresh VampireNet, handed over in training mode as a trainer leaves it, with
    ``export_border_model`` to ``path``; say what came back (the grader reads the file)."""
    returned = _ch04().export_border_model(_model(train=True), Path(path))
    return {"kind": type(returned).__name__, "is_path": isinstance(returned, Path),
            "path": str(returned) if isinstance(returned, (str, Path)) else None}


def _runs(session: ort.InferenceSession) -> list[int] | str:
    """The output shape for a batch of three zeros of the session's declared input."""
    (model_input,) = session.get_inputs()
    shape = [3 if not isinstance(axis, int) else axis for axis in model_input.shape]
    try:
        zeros = np.zeros(shape, DTYPES.get(model_input.type, np.float32))
        return list(np.shape(session.run(None, {model_input.name: zeros})[0]))
    except Exception as error:  # onnxruntime raises its own exception types
        return f"{type(error).__name__}: {error}"


def _spinning(options: ort.SessionOptions) -> str | None:
    try:
        return options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # onnxruntime: "SessionOptions does not have configuration with key"
        return None


def session(path: str, threads: int, providers: list[str] | None = None) -> dict[str, object]:
    """``make_session(path, threads=threads[, providers=providers])``, described: its options,
    the providers it runs on, the warnings it issued and whether it runs a batch of three."""
    keywords = {} if providers is None else {"providers": tuple(providers)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = _ch04().make_session(Path(path), threads=threads, **keywords)
    issued = [(w.category.__name__, str(w.message)) for w in caught]
    if not isinstance(made, ort.InferenceSession):
        return {"kind": type(made).__name__, "warnings": issued}
    options = made.get_session_options()
    return {"kind": "InferenceSession", "intra_op_num_threads": options.intra_op_num_threads,
            "graph_optimization_level": options.graph_optimization_level.name,
            "allow_spinning": _spinning(options), "providers": list(made.get_providers()),
            "warnings": issued, "logits_shape": _runs(made)}


class DoctoredSession:
    """A real session whose answer drifts by ``shift`` in one logit, at one batch size only."""

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
            outputs[0] = outputs[0].copy()
            outputs[0][-1, 0] += self.shift  # one portrait's first logit: not a uniform shift
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
