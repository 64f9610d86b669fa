"""Chapter 13 — Make-up night: releasing a new model safely.

The gate's report is graded on budgets of both directions, absolute and relative to the
champion, with values exactly at their thresholds and measurements that are missing or NaN.
The shadow comparator runs in the sandbox beside the grader's probe (``autograder/probes/
ch13.py``) on a scripted night: a champion and a challenger that disagrees, raises and dawdles
where the script says. The A/B decision is checked against the grader's own two-proportion
z-test and sample-size formula, computed here with ``statistics.NormalDist``.

Sealed: your code runs in a sandboxed process (the ``submission`` and ``probes`` fixtures); the
expected values are computed here. The library's release gate, shadow comparator and
A/B simulation (``vampire_detector.release_gate``, ``vampire_detector.rollout``,
``vampire_detector.ab_simulation``) cannot be imported by ch13_release.py while it is graded.

Wrong answers these tests catch, each with feedback that names the problem:

- 13.1 ``copies-the-library``: the library's ``check_budgets`` imported instead of written.
- 13.1 ``at-the-budget-fails``: a strict inequality, so a value exactly at its budget fails.
- 13.1 ``directions-swapped``: "at least" checked as "at most" and the other way round.
- 13.1 ``nan-passes``: a NaN measurement passes, because no comparison with NaN is true.
- 13.1 ``missing-raises``: a measure that was not measured raises instead of failing.
- 13.1 ``margin-from-the-wrong-side``: the champion's margin added where it is subtracted.
- 13.2 ``copies-the-library``: the library's ``ShadowComparator`` imported.
- 13.2 ``challenger-answer-returned``: the challenger's answer returned to the traveller.
- 13.2 ``exceptions-escape``: a challenger's exception reaches the caller.
- 13.2 ``agreement-over-all-requests``: agreement divided by every request, errors included.
- 13.2 ``log-uncapped``: every disagreement kept in the log.
- 13.2 ``challenger-inline``: the challenger called before answering, so a slow one delays the
  gate.
- 13.3 ``copies-the-library``: the A/B simulation's likelihood-ratio decision imported.
- 13.3 ``one-sided-test``: the p-value of a one-sided test.
- 13.3 ``unpooled-standard-error``: the test's standard error from each arm's own rate.
- 13.3 ``sample-size-rounded-down``: a fractional sample size truncated.
- 13.3 ``sample-size-one-sided``: ``z(1 - alpha)`` instead of ``z(1 - alpha / 2)``.
- 13.3 ``sample-size-unpooled``: the null hypothesis's spread from each arm's own rate.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

Z = NormalDist()


@pytest.fixture(scope="module")
def ch13(submission):
    return submission("ch13_release")


def call(function, *args, **kwargs):
    """``function(*args)``; an exception becomes a failure that says what raised."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:  # the student's exception is the feedback
        pytest.fail(f"{getattr(function, '__name__', 'the call')} raised "
                    f"{type(error).__name__}: {error}", pytrace=False)


# Exercise 13.1 ------------------------------------------------------------------------------

def rows_by_name(report) -> dict[str, dict]:
    assert isinstance(report, dict) and {"passed", "failures", "rows"} <= set(report), (
        "gate_report must return a dict with 'passed', 'failures' and 'rows'")
    rows = report["rows"]
    assert isinstance(rows, list) and all(isinstance(row, dict) for row in rows), (
        "'rows' must be a list of dicts, one per budget")
    return {row.get("name"): row for row in rows}


# every value below is a binary fraction, so "exactly at the threshold" is exact in floats
ABSOLUTE = [
    {"name": "make-up accuracy", "measure": "makeup_accuracy", "kind": "at least",
     "limit": 0.875},
    {"name": "clean accuracy", "measure": "clean_accuracy", "kind": "at least", "limit": 0.9375},
    {"name": "latency", "measure": "p50_ms", "kind": "at most", "limit": 20.0},
    {"name": "size", "measure": "size_mb", "kind": "at most", "limit": 1.0},
]


@pytest.mark.exercise("13.1")
@pytest.mark.points(2)
def test_absolute_budgets_in_both_directions(ch13):
    """13.1 gate_report passes a value at its budget and fails one beyond it, both ways"""
    at = {"makeup_accuracy": 0.875, "clean_accuracy": 0.9375, "p50_ms": 20.0, "size_mb": 1.0}
    report = call(ch13.gate_report, at, ABSOLUTE)
    rows = rows_by_name(report)
    assert list(rows) == [b["name"] for b in ABSOLUTE], (
        "the report must hold one row per budget, named as the budget, in the budgets' order")
    assert all(row.get("passed") is True for row in rows.values()) and report["passed"] is True, (
        "every measurement here is exactly at its budget, and a value exactly at the budget "
        "passes: 'at least' is >=, 'at most' is <=")
    assert report["failures"] == [], "nothing failed, so 'failures' must be empty"
    for budget in ABSOLUTE:
        row = rows[budget["name"]]
        assert row.get("threshold") == budget["limit"] and row.get("measured") == at[
            budget["measure"]], (f"the row of {budget['name']!r} must show its threshold and "
                                 "the measured value")
    beyond = {"makeup_accuracy": 0.75, "clean_accuracy": 0.96875, "p50_ms": 20.5,
              "size_mb": 0.5}
    report = call(ch13.gate_report, beyond, ABSOLUTE)
    rows = rows_by_name(report)
    verdicts = {name: row.get("passed") for name, row in rows.items()}
    assert verdicts == {"make-up accuracy": False, "clean accuracy": True, "latency": False,
                        "size": True}, (
        "a value below an 'at least' budget fails and one above it passes; a value above an "
        "'at most' budget fails and one below it passes: check each kind's direction")
    assert report["failures"] == ["make-up accuracy", "latency"] and report["passed"] is False, (
        "'failures' must name the failing budgets, in the budgets' order, and 'passed' be False")
    assert all(rows[name].get("reason") for name in report["failures"]), (
        "a failing row must say why in its 'reason'")


RELATIVE = [
    {"name": "make-up vs champion", "measure": "makeup_accuracy", "kind": "at least",
     "margin": 0.125},
    {"name": "latency vs champion", "measure": "p50_ms", "kind": "at most", "margin": 2.5},
    {"name": "make-up floor", "measure": "makeup_accuracy", "kind": "at least", "limit": 0.5},
]
CHAMPION = {"makeup_accuracy": 0.875, "p50_ms": 12.5}


@pytest.mark.exercise("13.1")
@pytest.mark.points(2)
def test_budgets_relative_to_the_champion(ch13):
    """13.1 A margin is measured from the champion's own value, on the side that is worse"""
    at = {"makeup_accuracy": 0.75, "p50_ms": 15.0}  # champion - 0.125, champion + 2.5
    report = call(ch13.gate_report, at, RELATIVE, CHAMPION)
    rows = rows_by_name(report)
    assert rows.get("make-up vs champion", {}).get("threshold") == 0.75, (
        "an 'at least' budget with a margin allows the champion's value minus the margin: no "
        "worse than the champion by more than the margin")
    assert rows.get("latency vs champion", {}).get("threshold") == 15.0, (
        "an 'at most' budget with a margin allows the champion's value plus the margin")
    assert report["passed"] is True, (
        "both measurements are exactly at their champion-relative thresholds, which passes")
    worse = {"makeup_accuracy": 0.6875, "p50_ms": 15.5}
    report = call(ch13.gate_report, worse, RELATIVE, CHAMPION)
    assert report["failures"] == ["make-up vs champion", "latency vs champion"], (
        "a candidate worse than the champion by more than the margin must fail that budget "
        "(and still pass the absolute floor)")
    better = {"makeup_accuracy": 0.9375, "p50_ms": 9.0}
    report = call(ch13.gate_report, better, RELATIVE, CHAMPION)
    assert report["passed"] is True, (
        "a candidate better than the champion must pass its champion-relative budgets")


@pytest.mark.exercise("13.1")
@pytest.mark.points(2)
def test_missing_or_nan_measurements_fail_with_a_reason(ch13):
    """13.1 A measurement that is NaN or missing, or a champion value missing, fails"""
    budgets = ABSOLUTE + RELATIVE[:1]
    measured = {"makeup_accuracy": math.nan, "clean_accuracy": 0.96875, "p50_ms": 8.0}
    report = call(ch13.gate_report, measured, budgets, {})
    rows = rows_by_name(report)
    assert rows.get("make-up accuracy", {}).get("passed") is False, (
        "a NaN measurement must fail: every comparison with NaN is False, so a check written "
        "as 'not below the limit' lets NaN pass")
    assert rows.get("size", {}).get("passed") is False, (
        "a budget whose measure was not measured must fail")
    assert rows.get("make-up vs champion", {}).get("passed") is False, (
        "a champion-relative budget fails when the champion's value was not measured")
    assert rows.get("clean accuracy", {}).get("passed") is True, (
        "a NaN or a missing value elsewhere must not fail the budgets that were measured")
    assert report["failures"] == ["make-up accuracy", "size", "make-up vs champion"], (
        "'failures' must name every failing budget, in the budgets' order")
    assert all(isinstance(rows[name].get("reason"), str) and rows[name]["reason"]
               for name in report["failures"]), "each failing row must say why in 'reason'"
    with pytest.raises(ValueError):
        ch13.gate_report({"p50_ms": 1.0},
                         [{"name": "x", "measure": "p50_ms", "kind": "below", "limit": 2.0}])


# Exercise 13.2 ------------------------------------------------------------------------------

LOG_LIMIT = 3
SLOW_S = 0.25


def night() -> list[dict]:
    """Twenty travellers: agreement, disagreement both ways, a broken and a slow challenger."""
    script = []
    for i in range(20):
        champion = "vampire" if i % 3 == 0 else "villager"
        step = {"portrait": f"traveller-{i}", "champion": champion, "challenger": champion}
        if i in {2, 5, 9, 12, 16}:  # the challenger flips these
            step["challenger"] = "vampire" if champion == "villager" else "villager"
        if i in {3, 4, 7, 10}:
            step["raises"] = True
        if i in {1, 8, 15}:
            step["sleep_s"] = SLOW_S
        script.append(step)
    return script


@pytest.fixture(scope="module")
def shadowed(probes) -> dict:
    observed = probes("ch13", "ch13_release").shadow_night(night(), LOG_LIMIT)
    assert isinstance(observed, dict), "the probe's observations did not come back"
    return observed


def summary_of(shadowed) -> dict:
    summary = shadowed["summary"]
    assert isinstance(summary, dict), "summary() must return a dict"
    return summary


@pytest.mark.exercise("13.2")
@pytest.mark.points(2)
def test_the_champion_always_answers(shadowed):
    """13.2 Every answer is the champion's, and no challenger exception escapes"""
    assert not shadowed["escaped"], (
        "an exception escaped the comparator: a challenger that raises must be counted, never "
        f"raised to the traveller (first: {shadowed['escaped'][0]})")
    expected = [step["champion"] for step in night()]
    assert shadowed["answers"] == expected, (
        "the comparator must return the champion's answer unchanged: it returned the "
        "challenger's (or another) answer for some travellers")


@pytest.mark.exercise("13.2")
@pytest.mark.points(2)
def test_agreement_is_counted_over_the_compared_requests(shadowed):
    """13.2 Errors are counted apart; agreement overall and per champion label"""
    script, summary = night(), summary_of(shadowed)
    compared = [s for s in script if not s.get("raises")]
    assert summary.get("requests") == len(script), "'requests' must count every answer"
    assert summary.get("errors") == len(script) - len(compared), (
        "every request whose challenger raised must be counted in 'errors'")
    assert summary.get("compared") == len(compared), (
        "'compared' must count the requests whose challenger answered (errors excluded); did "
        "summary() wait for the challenger calls still running?")
    agreement = sum(s["challenger"] == s["champion"] for s in compared) / len(compared)
    assert isinstance(summary.get("agreement"), float) and math.isclose(
        summary["agreement"], agreement, rel_tol=1e-9), (
        "'agreement' must be the share of the compared requests (errors excluded) on which "
        "both models gave the same label")
    per_label = {}
    for label in {s["champion"] for s in compared}:
        mine = [s for s in compared if s["champion"] == label]
        per_label[label] = sum(s["challenger"] == label for s in mine) / len(mine)
    got = summary.get("per_label")
    assert isinstance(got, dict) and set(got) == set(per_label) and all(
        math.isclose(got[label], value, rel_tol=1e-9) for label, value in per_label.items()), (
        "'per_label' must map each label the champion gave to the agreement among the "
        "compared requests the champion gave that label")


@pytest.mark.exercise("13.2")
@pytest.mark.points(1)
def test_the_disagreement_log_is_capped(shadowed):
    """13.2 The log keeps the earliest disagreements, at most log_limit of them"""
    summary = summary_of(shadowed)
    disagreements = [{"request": i, "champion": s["champion"], "challenger": s["challenger"]}
                     for i, s in enumerate(night())
                     if not s.get("raises") and s["challenger"] != s["champion"]]
    assert summary.get("disagreed") == len(disagreements), (
        "'disagreed' must count every disagreement, logged or not")
    log = summary.get("disagreements")
    assert isinstance(log, list) and len(log) <= LOG_LIMIT, (
        f"the disagreement log must hold at most log_limit entries ({LOG_LIMIT} here): a log "
        "that keeps everything grows without end on a busy night")
    assert log == disagreements[:LOG_LIMIT], (
        "the log must hold the earliest disagreements, each with its request number (from 0, "
        "in arrival order), the champion's label and the challenger's")


@pytest.mark.exercise("13.2")
@pytest.mark.points(2)
def test_a_slow_challenger_does_not_delay_the_answer(shadowed):
    """13.2 The answer does not wait for a slow challenger, and summary() waits for it"""
    slow = [i for i, s in enumerate(night()) if s.get("sleep_s")]
    waited = sum(shadowed["durations"][i] for i in slow)
    assert waited < 0.5 * SLOW_S * len(slow), (
        f"the answers to travellers whose challenger took {SLOW_S} s took {waited:.2f} s in "
        "all: the champion's answer must not wait for the challenger (run it after answering, "
        "on a background thread)")
    assert shadowed["challenger_calls"] == len(night()), (
        "summary() must wait until every challenger call has finished")


# Exercise 13.3 ------------------------------------------------------------------------------

def z_test(e1: int, n1: int, e2: int, n2: int) -> tuple[float, float, float, float]:
    """The grader's z (pooled), its two-sided p-value, and the wrong variants' values."""
    p1, p2 = e1 / n1, e2 / n2
    pooled = (e1 + e2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p2 - p1) / se if se else 0.0
    unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    z_unpooled = (p2 - p1) / unpooled if unpooled else 0.0
    return z, 2 * (1 - Z.cdf(abs(z))), 1 - Z.cdf(abs(z)), z_unpooled


# (champion errors, n, challenger errors, n, alpha): z about -2.6, +1.8 (one-sided only), -3.3
CASES = [(60, 500, 35, 500, 0.05), (30, 400, 45, 400, 0.05), (80, 1000, 40, 900, 0.01),
         (12, 300, 20, 100, 0.05)]


@pytest.mark.exercise("13.3")
@pytest.mark.points(2)
def test_the_z_statistic_and_its_two_sided_p_value(ch13):
    """13.3 ab_test's z (pooled standard error) and two-sided p-value"""
    for e1, n1, e2, n2, alpha in CASES:
        got = call(ch13.ab_test, e1, n1, e2, n2, alpha)
        assert isinstance(got, dict) and {"z", "p_value", "significant", "better"} <= set(got), (
            "ab_test must return a dict with 'z', 'p_value', 'significant' and 'better'")
        z, p, one_sided, z_unpooled = z_test(e1, n1, e2, n2)
        assert not math.isclose(got["z"], z_unpooled, rel_tol=1e-9) or math.isclose(
            z, z_unpooled, rel_tol=1e-9), (
            "z used each arm's own error rate for its standard error: the test's null "
            "hypothesis is one shared rate, so pool both arms' errors")
        assert math.isclose(got["z"], z, rel_tol=1e-6), (
            f"z is wrong for {e1}/{n1} vs {e2}/{n2}: (challenger rate - champion rate) over "
            "the pooled standard error")
        assert not math.isclose(got["p_value"], one_sided, rel_tol=1e-6), (
            "that is a one-sided p-value: the canary asks whether the arms differ in either "
            "direction, so count both tails")
        assert math.isclose(got["p_value"], p, rel_tol=1e-6, abs_tol=1e-12), (
            f"the p-value is wrong for {e1}/{n1} vs {e2}/{n2}")


@pytest.mark.exercise("13.3")
@pytest.mark.points(2)
def test_the_decision_at_the_stated_alpha(ch13):
    """13.3 ab_test decides at the stated alpha and names the better arm"""
    for e1, n1, e2, n2, alpha in CASES:
        got = call(ch13.ab_test, e1, n1, e2, n2, alpha)
        _, p, *_ = z_test(e1, n1, e2, n2)
        significant = p < alpha
        assert got["significant"] is significant, (
            f"{e1}/{n1} vs {e2}/{n2} at alpha={alpha}: 'significant' must be p_value < alpha, "
            "for the two-sided test")
        better = ("challenger" if e2 / n2 < e1 / n1 else "champion") if significant else None
        assert got["better"] == better, (
            "'better' names the arm with the lower error rate when the difference is "
            "significant, and is None when it is not")
    got = call(ch13.ab_test, 0, 200, 0, 50)
    assert got["z"] == 0 and got["p_value"] == 1 and got["significant"] is False, (
        "two arms without a single error show no difference: z is 0 and the p-value 1")
    with pytest.raises(ValueError):
        ch13.ab_test(30, 20, 1, 20)


# (p_champion, p_challenger, alpha, power); the fractional parts keep clear of whole numbers
SIZES = [(0.10, 0.07, 0.05, 0.8), (0.3, 0.25, 0.05, 0.9), (0.2, 0.15, 0.01, 0.8),
         (0.12, 0.10, 0.05, 0.8)]


def n_needed(p1: float, p2: float, alpha: float, power: float, pooled: bool = True,
             two_sided: bool = True) -> float:
    za = Z.inv_cdf(1 - alpha / 2 if two_sided else 1 - alpha)
    zb = Z.inv_cdf(power)
    p = (p1 + p2) / 2
    spread = math.sqrt(2 * p * (1 - p)) if pooled else math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return (za * spread + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p1 - p2) ** 2


@pytest.mark.exercise("13.3")
@pytest.mark.points(2)
def test_the_sample_size_per_arm(ch13):
    """13.3 sample_size_per_arm: the normal approximation, rounded up"""
    for p1, p2, alpha, power in SIZES:
        exact = n_needed(p1, p2, alpha, power)
        got = call(ch13.sample_size_per_arm, p1, p2, alpha, power)
        assert isinstance(got, int), "sample_size_per_arm must return a whole number (an int)"
        assert got != math.floor(exact), (
            "the sample size was rounded down: a fraction of a traveller more is still needed, "
            "so round up")
        assert got != math.ceil(n_needed(p1, p2, alpha, power, two_sided=False)), (
            "that sample size is for a one-sided test: the decision is two-sided, so use "
            "z(1 - alpha/2)")
        assert got != math.ceil(n_needed(p1, p2, alpha, power, pooled=False)), (
            "under the null hypothesis both arms share one rate: its term is "
            "z(1 - alpha/2) * sqrt(2 p (1 - p)) with p the mean of the two rates")
        assert got == math.ceil(exact), (
            f"the sample size per arm for {p1} vs {p2} (alpha={alpha}, power={power}) is wrong")
    with pytest.raises(ValueError):
        ch13.sample_size_per_arm(0.1, 0.1)
