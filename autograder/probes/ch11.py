"""Chapter 11's probes: the submission's lowering and its refusing exporter, on the grader's models.

The models are built here from a name and a seed, so that the grader builds the very same ones
in its own process to compute what to expect (``build`` is imported there too).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vampire_detector.weights import load_model

SMALL = 16  # the side of the small models' inputs: lowering them takes a second or two


class Cumulative(nn.Module):
    """A running sum over the channels: XNNPACK has no kernel for it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1)


class Label(nn.Module):
    """The index of the larger logit: XNNPACK has no argmax either."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=1)


class Smeared(nn.Module):
    """Convolutions on both sides of a running sum, which splits the delegated graph in two;
    with ``label``, an argmax at the end as well."""

    def __init__(self, label: bool = False):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.smear = Cumulative()
        self.tail = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        self.verdict = Label() if label else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.verdict(self.pool(self.tail(self.smear(self.head(x)))))


def build(name: str, train: bool = False) -> nn.Module:
    """One of the grader's models, the same in the grader's process and in the sandbox."""
    if name == "vampirenet":
        model = load_model("vampirenet", device=torch.device("cpu"))
    else:
        with torch.random.fork_rng():
            torch.manual_seed(11)
            model = Smeared(label=name == "smeared-label")
            for module in model.modules():  # running statistics that are not the identity
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
    return model.train(train)


def _ch11():
    return importlib.import_module("ch11_edge")


def lower(name: str, path: str, inputs: np.ndarray, train: bool = False) -> dict[str, object]:
    """``lower_with_report`` of the model ``name`` (handed over in train mode when ``train``) on
    ``inputs``; the report's fields as plain data (the grader reads the file itself)."""
    report = _ch11().lower_with_report(build(name, train), torch.from_numpy(inputs), Path(path))
    returned = getattr(report, "path", None)
    return {"kind": type(report).__name__,
            "path": str(returned) if isinstance(returned, (str, Path)) else None,
            "partitions": [dict(p) for p in getattr(report, "partitions", [])],
            "portable": dict(getattr(report, "portable", {})),
            "max_abs_diff": float(getattr(report, "max_abs_diff", float("nan")))}


def export_checked(name: str, path: str, side: int) -> dict[str, object]:
    """``export_fully_delegated`` of the model ``name`` for a ``(1, 3, side, side)`` example:
    what it returned, or what it raised."""
    example = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(3))
    try:
        returned = _ch11().export_fully_delegated(build(name), example, Path(path))
    except NotImplementedError:
        raise
    except Exception as error:  # the refusal is the point here; describe it
        return {"raised": type(error).__name__, "is_value_error": isinstance(error, ValueError),
                "message": str(error)}
    return {"raised": None, "is_path": isinstance(returned, Path),
            "path": str(returned) if isinstance(returned, (str, Path)) else None}
