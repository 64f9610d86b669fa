"""The release gate: every budget is named with its measurement, a miss fails the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from vampire_detector.model import build_model
from vampire_detector.onnx_export import export_onnx
from vampire_detector.release_gate import BUDGETS, Budget, check_budgets, run_gate

GOOD = {"clean_accuracy": 0.97, "makeup_accuracy": 0.95, "parity": 1e-7, "size_mb": 0.2,
        "p50_ms": 1.0, "int8_accuracy_drop": 0.004}


def test_a_candidate_within_every_budget_passes_and_each_is_reported() -> None:
    report = check_budgets(GOOD)
    assert report.passed and report.failures == []
    assert [row["budget"] for row in report.rows()] == [budget.name for budget in BUDGETS]
    assert all(row["verdict"] == "pass" for row in report.rows())


@pytest.mark.parametrize(("name", "value"), [("makeup_accuracy", 0.51), ("parity", 0.02),
                                             ("size_mb", 45.0), ("p50_ms", 80.0),
                                             ("int8_accuracy_drop", 0.08)])
def test_one_missed_budget_fails_the_gate_and_is_named(name: str, value: float) -> None:
    report = check_budgets({**GOOD, name: value})
    assert not report.passed and report.failures == [name]
    row = next(row for row in report.rows() if row["budget"] == name)
    assert row["verdict"] == "FAIL" and row["measured"] == f"{value:.4g}"


def test_a_value_exactly_at_its_limit_passes_both_kinds() -> None:
    budgets = (Budget("a", 0.9, "min"), Budget("b", 5.0, "max"))
    assert check_budgets({"a": 0.9, "b": 5.0}, budgets).passed


def test_a_budget_without_a_measurement_is_an_error() -> None:
    with pytest.raises(KeyError, match="p50_ms"):
        check_budgets({k: v for k, v in GOOD.items() if k != "p50_ms"})


@pytest.mark.timeout(300)
def test_the_gate_measures_a_real_onnx_file(tmp_path: Path) -> None:
    model = build_model("vampirenet").eval()  # untrained: a coin toss at the gate
    path = export_onnx(model, tmp_path / "candidate.onnx")
    measured, report = run_gate(model, path, n=100)
    assert set(measured) == {budget.name for budget in BUDGETS}
    assert measured["parity"] < 1e-4 and 0 < measured["size_mb"] < 1
    assert measured["p50_ms"] > 0
    assert (tmp_path / "candidate.int8.onnx").is_file()  # the INT8 copy the gate measured
    assert -1 <= measured["int8_accuracy_drop"] <= 1
    assert "clean_accuracy" in report.failures  # an untrained net is no detector
