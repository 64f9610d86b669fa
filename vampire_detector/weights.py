"""Trained weights: where they live, how they are saved, and how a ready model is loaded.

Introduced in Chapter 1.

VampireNet's weights are small and committed with the course. The production model's are tens
of megabytes, so they are trained once on each machine (``train.ensure_weights``, about a minute
and a half on two CPU cores) and kept in a cache folder, ``$VAMPIRE_WEIGHTS_CACHE`` or
``~/.cache/vampire-detector``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vampire_detector.device import pick_device
from vampire_detector.model import build_model

WEIGHTS_DIR = Path(__file__).with_name("weights")
COMMITTED = frozenset({"vampirenet"})


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "vampire-detector"
    return Path(os.environ.get("VAMPIRE_WEIGHTS_CACHE", default))


def weights_path(arch: str) -> Path:
    """Where the weights of ``arch`` live; ``<arch>.json`` beside them says how they were made."""
    folder = WEIGHTS_DIR if arch in COMMITTED else cache_dir()
    return folder / f"{arch}.pt"


def save_weights(model: nn.Module, path: Path, metadata: dict[str, Any]) -> None:
    """Save the state dict (CPU tensors, so any machine can load it) and its metadata.

    Each file is written under a temporary name and renamed into place, so a process that loads
    the weights while another is still saving them never reads half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    torch.save(state, partial)
    notes = partial.with_suffix(".json")
    notes.write_text(json.dumps(metadata, indent=2) + "\n")
    os.replace(notes, path.with_suffix(".json"))
    os.replace(partial, path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the weights at ``path``, waiting for any process that holds it.

    The lock is a file beside the weights. Where ``fcntl`` is missing (Windows) there is no
    lock: at worst, two processes started at the same moment both train the same weights, and
    the last one to finish saves them.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def load_metadata(arch: str = "vampirenet") -> dict[str, Any]:
    """How the weights of ``arch`` were trained, and how well they did."""
    return json.loads(weights_path(arch).with_suffix(".json").read_text())


def load_model(arch: str = "vampirenet", path: Path | None = None,
               device: torch.device | None = None) -> nn.Module:
    """Build ``arch``, load its weights, and return it in eval mode on ``device``."""
    path = path or weights_path(arch)
    if not path.exists():
        raise FileNotFoundError(
            f"no weights at {path}; train them with "
            f"`python -m vampire_detector.train --arch {arch} --out {path}`")
    model = build_model(arch)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval().to(device or pick_device())
