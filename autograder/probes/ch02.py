"""Chapter 2's probes: the submission's trace, disagreement finder and border module, handed a
VampireNet (and gates built on it) here; only outputs and facts come back."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch

from vampire_detector.gate import DraftGarlicGate, GarlicGate
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


class Nudged(torch.nn.Module):
    """VampireNet's logits raised by 300, plus ``nudge`` times each portrait's first pixel.

    Traced with another nudge than its eager twin, it disagrees on each portrait by a known
    amount; the large logits make a relative tolerance far wider than an absolute one.
    """

    def __init__(self, detector: torch.nn.Module, nudge: float):
        super().__init__()
        self.detector, self.nudge = detector, nudge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.detector(x) + 300.0 + self.nudge * x[:, :1, 0, 0]


def _ch02():
    return importlib.import_module("ch02_tracing")


def _model(train: bool = False) -> torch.nn.Module:
    return load_model("vampirenet", device=CPU).train(train)


# Runs in a fresh interpreter where importing vampire_detector fails, as at the border.
LOADER = textwrap.dedent("""
    import sys
    sys.modules["vampire_detector"] = None  # the class must not be needed
    import numpy, torch
    module = torch.jit.load(sys.argv[1])
    print(int(module.training))
    with torch.no_grad():
        for path in sys.argv[2:]:
            batch = torch.from_numpy(numpy.load(path))
            numpy.save(f"{path}.out.npy", module(batch).numpy(), allow_pickle=False)
""")


def trace(example: np.ndarray, train: bool = False,
          batches: list[np.ndarray] | None = None) -> dict[str, object]:
    """``trace_and_save`` of a fresh VampireNet (in train mode when ``train``) on ``example``;
    the model's mode afterwards and, for ``batches``, the saved file's outputs once loaded in a
    fresh interpreter without the course library."""
    model = _model(train)
    with tempfile.TemporaryDirectory() as folder:
        returned = _ch02().trace_and_save(model, torch.from_numpy(example),
                                          Path(folder) / "vampirenet.pt")
        seen: dict[str, object] = {"training_after": model.training}
        path = Path(returned) if isinstance(returned, (str, Path)) else None
        seen["exists"] = path is not None and path.is_file()
        if batches is not None and seen["exists"]:
            seen.update(_load_elsewhere(path, batches, Path(folder)))
    return seen


def _load_elsewhere(path: Path, batches: list[np.ndarray], folder: Path) -> dict[str, object]:
    inputs = [folder / f"batch{number}.npy" for number in range(len(batches))]
    for name, batch in zip(inputs, batches, strict=True):
        np.save(name, batch, allow_pickle=False)
    done = subprocess.run([sys.executable, "-c", LOADER, str(path), *map(str, inputs)],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        return {"load_error": (done.stderr.strip().splitlines() or ["no error output"])[-1]}
    return {"loaded_training": done.stdout.strip() == "1",
            "outputs": [np.load(f"{name}.out.npy", allow_pickle=False) for name in inputs]}


def _traced(module: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    with torch.no_grad():
        return torch.jit.trace(module.eval(), example, check_trace=False)


def disagreements(kind: str, example: np.ndarray, candidates: np.ndarray,
                  atol: float | None = None) -> dict[str, object]:
    """``find_disagreements`` of a module (``model``: VampireNet; ``gate``: a GarlicGate;
    ``draft``: a DraftGarlicGate; ``nudged``: a Nudged VampireNet, traced with a nudge of 1
    and run eagerly with none) and its trace on ``example``, over ``candidates``."""
    model = _model()
    module = {"model": lambda: model, "gate": lambda: GarlicGate(model),
              "draft": lambda: DraftGarlicGate(model),
              "nudged": lambda: Nudged(model, 0.0)}[kind]().eval()
    traced = Nudged(model, 1.0).eval() if kind == "nudged" else module
    trace = _traced(traced, torch.from_numpy(example))
    options = {} if atol is None else {"atol": atol}
    found = _ch02().find_disagreements(module, trace, torch.from_numpy(candidates), **options)
    return {"is_list": isinstance(found, list), "indices": [int(index) for index in found]}


def border_ready(example: np.ndarray, batches: list[np.ndarray],
                 train: bool = True) -> dict[str, object]:
    """``border_ready`` of a fresh VampireNet (in train mode when ``train``) on ``example``:
    the model's mode afterwards, what came back, its outputs, and its outputs after a
    save and load."""
    model = _model(train)
    ready = _ch02().border_ready(model, torch.from_numpy(example))
    seen: dict[str, object] = {"training_after": model.training,
                               "script": isinstance(ready, torch.jit.ScriptModule)}
    inputs = [torch.from_numpy(batch) for batch in batches]
    with torch.no_grad():
        seen["outputs"] = [ready(x).numpy() for x in inputs]
    if not seen["script"]:
        return seen
    seen["parameters"] = len(list(ready.parameters()))
    with tempfile.TemporaryDirectory() as folder:
        try:
            torch.jit.save(ready, str(Path(folder) / "ready.pt"))
            loaded = torch.jit.load(str(Path(folder) / "ready.pt"))
        except RuntimeError as error:
            seen["save_error"] = str(error)[:200]
            return seen
    with torch.no_grad():
        seen["loaded_outputs"] = [loaded(x).numpy() for x in inputs]
    return seen
