"""Chapter 2 exercises: tracing.

Fill in the three functions below, then grade them with

    pytest autograder/test_ch02_tracing.py
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def check_example(example: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``example`` is a float ``(N, 3, H, W)`` batch of portraits."""
    if not isinstance(example, torch.Tensor) or example.dim() != 4 or example.size(1) != 3:
        raise ValueError("example must be a (N, 3, H, W) tensor of portraits")
    if not example.is_floating_point():
        raise ValueError(f"example must hold floats (normalised pixels), not {example.dtype}")


def trace_and_save(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Exercise 2.1: trace ``model`` for inference and save it where the border can load it.

    ``example`` is a float ``(N, 3, H, W)`` batch. The file written at ``path`` must load with
    ``torch.jit.load`` in a process that has never imported the model's class, be in eval mode,
    and give the model's eval-mode outputs for any batch size. Leave ``model`` in the mode it was
    in. Return the path. Raise ``ValueError`` when ``example`` is not such a batch.
    """
    # Hint: the trace records whatever mode the model is in when torch.jit.trace runs.
    raise NotImplementedError(
        "Exercise 2.1 is not implemented yet: write it in exercises/ch02_tracing.py")


def find_disagreements(eager: nn.Module, traced: torch.jit.ScriptModule,
                       candidates: torch.Tensor, atol: float = 1e-5) -> list[int]:
    """Exercise 2.2: the candidates on which a trace and its eager model disagree.

    Run both on each candidate alone (a batch of one, ``candidates[i:i + 1]``) and return, in
    ascending order, the indices ``i`` where the outputs differ in shape or by more than ``atol``
    anywhere, or where the trace raises an error. Raise ``ValueError`` when ``candidates`` is
    empty or ``atol`` is negative.
    """
    # Hint: torch.allclose(a, b, atol=atol, rtol=0) compares within an absolute tolerance.
    raise NotImplementedError(
        "Exercise 2.2 is not implemented yet: write it in exercises/ch02_tracing.py")


def border_ready(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Exercise 2.3: a traced and frozen copy of ``model``, ready to save and ship.

    Trace in eval mode, then freeze, so that the weights become constants of the graph and no
    trainable parameter is left. The result must give the eval-mode outputs of ``model`` for any
    batch size and must survive ``torch.jit.save`` and ``torch.jit.load``. Leave ``model`` in
    the mode it was in. Raise ``ValueError`` when ``example`` is not a float ``(N, 3, H, W)``
    batch.
    """
    # Hint: torch.jit.freeze refuses a module in training mode.
    # Hint: optimize_for_inference makes graphs that cannot be saved: leave it to the loader.
    raise NotImplementedError(
        "Exercise 2.3 is not implemented yet: write it in exercises/ch02_tracing.py")
