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
        # BEGIN SOLUTION
        # Hint: TorchScript compiles torch operations only: no NumPy, no .numpy().
        # Hint: torch.clamp does what np.clip and np.maximum did, without leaving torch.
        level = self.target if target is None else target
        pixels = x * self.std + self.mean
        brightness = pixels.mean(dim=(1, 2, 3)).clamp(min=1e-3)
        gains = (level / brightness).clamp(1.0, self.max_gain).view(-1, 1, 1, 1)
        return ((pixels * gains).clamp(0.0, 1.0) - self.mean) / self.std
        # END SOLUTION


def export_dynamic_batch(model: nn.Module, example: torch.Tensor,
                         max_batch: int = 1024) -> ExportedProgram:
    """Exercise 3.2: export ``model`` (in eval mode) so that any batch from 1 to ``max_batch`` runs.

    ``example`` is a float ``(N, 3, H, W)`` batch; ``N`` may be 1. The program's ``.module()``
    must accept every batch size from 1 to ``max_batch`` at the example's image size, give the
    eval-mode outputs of ``model``, and refuse a larger batch. Raise ``ValueError`` when
    ``example`` is not such a batch or ``max_batch`` is smaller than 2.
    """
    # BEGIN SOLUTION
    # Hint: export specialises a dimension whose example size is 0 or 1.
    if not isinstance(example, torch.Tensor) or example.dim() != 4 or example.size(1) != 3:
        raise ValueError("example must be a (N, 3, H, W) tensor of portraits")
    if max_batch < 2:
        raise ValueError(f"max_batch must be at least 2, got {max_batch}")
    if len(example) < 2:
        example = example.expand(2, -1, -1, -1).contiguous()
    batch = Dim("batch", min=1, max=max_batch)
    return torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
    # END SOLUTION


def check_batch(program: ExportedProgram, batch: object) -> None:
    """Exercise 3.3: refuse, with a ``ValueError`` that says why, a batch ``program`` cannot take.

    ``program`` has one tensor input. Check ``batch`` against it before running it: a tensor,
    of the same dtype, the same number of dimensions, every static size equal, and every dynamic
    size within the range the program allows. Return ``None`` when the batch fits.
    """
    # BEGIN SOLUTION
    # Hint: _input_spec(program) is the example tensor the program recorded for its input.
    # Hint: a dynamic size in its shape is a torch.SymInt, and
    # Hint: program.range_constraints[size.node.expr] is its range (.lower and .upper).
    expected = _input_spec(program)
    if not isinstance(batch, torch.Tensor):
        raise ValueError(f"expected a tensor, got {type(batch).__name__}")
    if batch.dtype != expected.dtype:
        raise ValueError(f"expected dtype {expected.dtype}, got {batch.dtype}")
    if batch.dim() != expected.dim():
        raise ValueError(f"expected {expected.dim()} dimensions, got {batch.dim()}")
    for axis, (size, want) in enumerate(zip(batch.shape, expected.shape, strict=True)):
        if isinstance(want, torch.SymInt):
            bounds = program.range_constraints[want.node.expr]
            if not bounds.lower <= size <= bounds.upper:
                raise ValueError(f"dimension {axis} is {size}, outside the allowed range "
                                 f"[{bounds.lower}, {bounds.upper}]")
        elif size != want:
            raise ValueError(f"dimension {axis} is {size}; this program needs exactly {want}")
    # END SOLUTION


def _input_spec(program: ExportedProgram) -> torch.Tensor:
    """The example (fake) tensor that ``program`` recorded for its single user input."""
    names = set(program.graph_signature.user_inputs)
    nodes = [node for node in program.graph.nodes
             if node.op == "placeholder" and node.name in names]
    if len(nodes) != 1:
        raise ValueError(f"expected a program with one input, it has {len(nodes)}")
    return nodes[0].meta["val"]
