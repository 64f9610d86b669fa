"""Chapter 3's probes: the submission's lantern scripted, its exports run (and saved, and run
again in a fresh interpreter without the course library), its check_batch asked about
programs exported here."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch
from torch.export import Dim, ExportedProgram

from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


def _ch03():
    return importlib.import_module("ch03_export")


def _first_lines(error: BaseException, lines: int = 4) -> str:
    return "\n".join(str(error).strip().splitlines()[:lines])[:600]


def lantern(batches: list[np.ndarray], target: float | None, max_gain: float,
            scripted: bool = True) -> dict[str, object]:
    """``NightLantern(max_gain)`` on each batch, eager and (when ``scripted``) compiled by
    ``torch.jit.script``; the outputs, or why scripting failed."""
    made = _ch03().NightLantern(max_gain=max_gain)
    inputs = [torch.from_numpy(batch) for batch in batches]
    seen: dict[str, object] = {"eager": [made(x, target).detach().numpy() for x in inputs]}
    if scripted:
        try:
            compiled = torch.jit.script(made)
        except Exception as error:  # TorchScript's errors are long: keep the first lines
            return {**seen, "script_error": _first_lines(error)}
        seen["script_module"] = isinstance(compiled, torch.jit.ScriptModule)
        seen["scripted"] = [compiled(x, target).detach().numpy() for x in inputs]
    return seen


def _run(program: ExportedProgram, batches: list[torch.Tensor]) -> list[object]:
    outputs: list[object] = []
    module = program.module()
    for batch in batches:
        try:
            outputs.append(module(batch).detach().numpy())
        except Exception as error:
            outputs.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
    return outputs


# Runs in a fresh interpreter where importing vampire_detector fails.
RELOAD = textwrap.dedent("""
    import sys
    sys.modules["vampire_detector"] = None
    import numpy, torch
    module = torch.export.load(sys.argv[1]).module()
    for number, path in enumerate(sys.argv[2:]):
        batch = torch.from_numpy(numpy.load(path))
        numpy.save(f"{path}.out.npy", module(batch).detach().numpy(), allow_pickle=False)
""")


def export(example: np.ndarray, batches: list[np.ndarray], max_batch: int | None = None,
           train: bool = False, travel: bool = False) -> dict[str, object]:
    """``export_dynamic_batch`` of a fresh VampireNet (handed over in train mode when
    ``train``) on ``example``; the program's outputs for ``batches``, and, when ``travel``,
    its outputs once saved and loaded in a fresh interpreter without the course library."""
    model = load_model("vampirenet", device=CPU)
    if train:
        model.train()
    options = {} if max_batch is None else {"max_batch": max_batch}
    program = _ch03().export_dynamic_batch(model, torch.from_numpy(example), **options)
    if not isinstance(program, ExportedProgram):
        return {"kind": type(program).__name__}
    inputs = [torch.from_numpy(batch) for batch in batches]
    seen: dict[str, object] = {"kind": "ExportedProgram", "outputs": _run(program, inputs)}
    if travel:
        seen.update(_travel(program, batches))
    return seen


def _travel(program: ExportedProgram, batches: list[np.ndarray]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "vampirenet.pt2"
        torch.export.save(program, saved)
        paths = [Path(folder) / f"batch{number}.npy" for number in range(len(batches))]
        for path, batch in zip(paths, batches, strict=True):
            np.save(path, batch, allow_pickle=False)
        done = subprocess.run([sys.executable, "-c", RELOAD, str(saved), *map(str, paths)],
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
            return {"travel_error": last[:400]}
        return {"travelled": [np.load(f"{path}.out.npy", allow_pickle=False)
                              for path in paths]}


_PROGRAMS: dict[bool, ExportedProgram] = {}


def _program(dynamic: bool) -> ExportedProgram:
    """VampireNet exported here: batches of 1 to 64, or of exactly 4."""
    if dynamic not in _PROGRAMS:
        model = load_model("vampirenet", device=CPU)
        example = to_batch(make_portraits(4, seed=33)[0])
        shapes = ({0: Dim("batch", min=1, max=64)},) if dynamic else None
        _PROGRAMS[dynamic] = torch.export.export(model, (example,), dynamic_shapes=shapes)
    return _PROGRAMS[dynamic]


def check_batch(batch: object, dynamic: bool = True) -> object:
    """``check_batch`` of a program exported here (dynamic batch of 1-64, or static at 4) and
    ``batch`` (an array becomes a tensor of its dtype; anything else is handed over as is)."""
    given = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
    return _ch03().check_batch(_program(dynamic), given)
