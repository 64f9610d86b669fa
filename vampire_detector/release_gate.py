"""The release gate: measure a candidate against written budgets before it may reach the gate.

Introduced in Chapter 13.

A candidate is an eager model and the ONNX file exported from it. The gate measures what the
border would feel (accuracy on held-out clean portraits and on the make-up crowd, agreement
between the ONNX file and the model it came from, the file's size, the latency of one portrait),
then quantizes the file to INT8 as Chapter 5 does and measures what that costs in accuracy, so
that a candidate whose weights quantize badly is refused before anyone ships its INT8 copy. It
compares each number with its budget. The report names every budget, the measured value,
the limit and whether it passed, so that a refusal says exactly why. Only a candidate that
passes every budget is registered, as the ``challenger``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vampire_detector.bench import time_calls
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import SPLITS, make_portraits
from vampire_detector.predictor import softmax
from vampire_detector.quantize import quantize_onnx_static
from vampire_detector.tensors import to_batch


@dataclass(frozen=True)
class Budget:
    name: str  # the measurement it limits, e.g. "makeup_accuracy"
    limit: float
    kind: str  # "min": the measurement must reach the limit; "max": it must not exceed it
    unit: str = ""

    def allows(self, value: float) -> bool:
        if self.kind not in {"min", "max"}:
            raise ValueError(f"budget {self.name}: kind must be 'min' or 'max', not {self.kind!r}")
        return value >= self.limit if self.kind == "min" else value <= self.limit


BUDGETS = (
    Budget("clean_accuracy", 0.95, "min"),
    Budget("makeup_accuracy", 0.90, "min"),
    Budget("parity", 1e-4, "max", "largest change of P(class)"),
    Budget("size_mb", 1.0, "max", "MB"),
    Budget("p50_ms", 20.0, "max", "ms, one portrait"),
    Budget("int8_accuracy_drop", 0.02, "max", "FP32 minus INT8 accuracy, worse population"),
)


@dataclass(frozen=True)
class Check:
    budget: Budget
    measured: float

    @property
    def passed(self) -> bool:
        return self.budget.allows(self.measured)


@dataclass(frozen=True)
class GateReport:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[str]:
        return [check.budget.name for check in self.checks if not check.passed]

    def rows(self) -> list[dict[str, str]]:
        """One table row per budget."""
        return [{"budget": c.budget.name, "measured": f"{c.measured:.4g}",
                 "limit": f"{'≥' if c.budget.kind == 'min' else '≤'} {c.budget.limit:g}",
                 "unit": c.budget.unit, "verdict": "pass" if c.passed else "FAIL"}
                for c in self.checks]


def check_budgets(measured: Mapping[str, float],
                  budgets: tuple[Budget, ...] = BUDGETS) -> GateReport:
    """Compare each budget with its measurement; a budget that was not measured is an error."""
    missing = [budget.name for budget in budgets if budget.name not in measured]
    if missing:
        raise KeyError(f"the gate has no measurement for {missing}: measure them first")
    return GateReport(tuple(Check(budget, float(measured[budget.name])) for budget in budgets))


POPULATIONS = ("clean", "makeup")


def accuracy(detector: OrtDetector, population: str, n: int) -> float:
    """Accuracy on ``n`` held-out (test split) portraits of ``population``."""
    images, labels = make_portraits(n, SPLITS["test"], population)
    return float((detector.probabilities(images).argmax(1) == labels).mean())


@torch.inference_mode()
def parity(model: nn.Module, detector: OrtDetector, n: int = 64) -> float:
    """Largest difference of P(class) between the ONNX file and the eager model it came from."""
    images, _ = make_portraits(n, SPLITS["test"], "makeup")
    eager = softmax(model.eval().cpu()(to_batch(images)).numpy())
    return float(np.abs(detector.probabilities(images) - eager).max())


def int8_path(onnx_path: str | Path) -> Path:
    """Where the gate writes the INT8 copy of ``onnx_path``: beside it."""
    return Path(onnx_path).with_suffix(".int8.onnx")


def measure(model: nn.Module, onnx_path: str | Path, n: int = 1000) -> dict[str, float]:
    """Everything ``BUDGETS`` limits, measured on this machine now."""
    detector = OrtDetector(onnx_path, threads=1)
    one = make_portraits(1, SPLITS["test"])[0]
    measured = {population: accuracy(detector, population, n) for population in POPULATIONS}
    int8 = OrtDetector(quantize_onnx_static(onnx_path, int8_path(onnx_path)), threads=1)
    drop = max(measured[p] - accuracy(int8, p, n) for p in POPULATIONS)
    return {"clean_accuracy": measured["clean"], "makeup_accuracy": measured["makeup"],
            "parity": parity(model, detector),
            "size_mb": Path(onnx_path).stat().st_size / 1e6,
            "p50_ms": time_calls(lambda: detector.probabilities(one), iters=50).p50,
            "int8_accuracy_drop": drop}


def run_gate(model: nn.Module, onnx_path: str | Path, budgets: tuple[Budget, ...] = BUDGETS,
             n: int = 1000) -> tuple[dict[str, float], GateReport]:
    """Measure the candidate and check every budget; returns the measurements and the report."""
    measured = measure(model, onnx_path, n)
    return measured, check_budgets(measured, budgets)
