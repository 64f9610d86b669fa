"""Where the model runs: the one place in the course that picks a device.

Introduced in Chapter 0.
"""

from __future__ import annotations

import os

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA when present, else CPU.

    ``preferred`` (or the ``VAMPIRE_DEVICE`` environment variable) forces a choice, e.g. ``"cpu"``
    to compare against the GPU on the same machine.
    """
    choice = preferred or os.environ.get("VAMPIRE_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was requested but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work; CUDA calls return before the kernels finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
