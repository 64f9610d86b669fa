"""Chapter 3 exercises: scripting and torch.export.

Fill in the three exercises below, then grade them with

    pytest autograder/test_ch03_export.py
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.export import Dim, ExportedProgram

from vampire_detector.images import MEAN, STD


class LanternDraft(nn.Module):
    """Renfield's lantern: brightens dark portraits before the detector sees them.

    Each portrait's pixels (in ``[0, 1]``) are multiplied by ``target / brightness``, clipped to
    ``[1, max_gain]``, then clamped to ``[0, 1]`` and normalised again. It works in eager mode,
    but ``torch.jit.script`` refuses it: NumPy, and an argument without a type.
    """

    def __init__(self, target: float = 0.4, max_gain: float = 4.0):
        super().__init__()
        self.target = target
        self.max_gain = max_gain
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x, target=None):  # no type hints: one of the draft's mistakes
        target = self.target if target is None else target
        pixels = x * self.std + self.mean
        brightness = pixels.mean(dim=(1, 2, 3)).detach().cpu().numpy()
        gains = np.clip(target / np.maximum(brightness, 1e-3), 1.0, self.max_gain)
        gains = torch.from_numpy(gains.astype(np.float32)).to(x.device).view(-1, 1, 1, 1)
        return ((pixels * gains).clamp(0.0, 1.0) - self.mean) / self.std


class NightLantern(LanternDraft):
    """Exercise 3.1: ``LanternDraft`` rewritten so that ``torch.jit.script`` accepts it.

    Same outputs as ``LanternDraft`` (within 1e-5) for any batch, with and without ``target``.
    """

    def forward(self, x: torch.Tensor, target: float | None = None) -> torch.Tensor:
        # Hint: TorchScript compiles torch operations only: no NumPy, no .numpy().
        # Hint: torch.clamp does what np.clip and np.maximum did, without leaving torch.
        raise NotImplementedError(
            "Exercise 3.1 is not implemented yet: write it in exercises/ch03_export.py")


def export_dynamic_batch(model: nn.Module, example: torch.Tensor,
                         max_batch: int = 1024) -> ExportedProgram:
    """Exercise 3.2: export ``model`` (in eval mode) so that any batch from 1 to ``max_batch`` runs.

    ``example`` is a float ``(N, 3, H, W)`` batch; ``N`` may be 1. The program's ``.module()``
    must accept every batch size from 1 to ``max_batch`` at the example's image size, give the
    eval-mode outputs of ``model``, and refuse a larger batch. Raise ``ValueError`` when
    ``example`` is not such a batch or ``max_batch`` is smaller than 2.
    """
    # Hint: export specialises a dimension whose example size is 0 or 1.
    raise NotImplementedError(
        "Exercise 3.2 is not implemented yet: write it in exercises/ch03_export.py")


def check_batch(program: ExportedProgram, batch: object) -> None:
    """Exercise 3.3: refuse, with a ``ValueError`` that says why, a batch ``program`` cannot take.

    ``program`` has one tensor input. Check ``batch`` against it before running it: a tensor,
    of the same dtype, the same number of dimensions, every static size equal, and every dynamic
    size within the range the program allows. Return ``None`` when the batch fits.
    """
    # Hint: _input_spec(program) is the example tensor the program recorded for its input.
    # Hint: a dynamic size in its shape is a torch.SymInt, and
    # Hint: program.range_constraints[size.node.expr] is its range (.lower and .upper).
    raise NotImplementedError(
        "Exercise 3.3 is not implemented yet: write it in exercises/ch03_export.py")


def _input_spec(program: ExportedProgram) -> torch.Tensor:
    """The example (fake) tensor that ``program`` recorded for its single user input."""
    names = set(program.graph_signature.user_inputs)
    nodes = [node for node in program.graph.nodes
             if node.op == "placeholder" and node.name in names]
    if len(nodes) != 1:
        raise ValueError(f"expected a program with one input, it has {len(nodes)}")
    return nodes[0].meta["val"]
