"""Chapter 10 — Monitoring.

The instrumentation is graded on a small gate app (built in the sandbox by the probe
``autograder/probes/ch10.py``), read back here through Prometheus's own text format. The alert
rules are run by promtool against recorded series: some of the cases are in autograder/ch10/,
the rest only your instructor has. The drift score is checked
against clean and make-up crowds that the generator draws fresh.

Sealed: your code runs in a sandboxed process (the ``submission`` and ``probes`` fixtures); the
expected values are computed here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from vampire_detector.drift import Reference, cheek_saturation
from vampire_detector.drift import psi as reference_psi
from vampire_detector.harness.prometheus import INSTALL_HINT
from vampire_detector.portraits import SPLITS, make_portraits

AUTOGRADER = Path(__file__).resolve().parent
PUBLIC_CASES = AUTOGRADER / "ch10" / "alerts_public_test.yml"
HIDDEN_CASES = AUTOGRADER / "hidden"


@pytest.fixture(scope="module")
def ch10(submission):
    return submission("ch10_monitoring")


# Exercise 10.1 ------------------------------------------------------------------------------

GATE_TRAFFIC = [("GET", "/travellers/mina"), ("GET", "/travellers/lucy"),
                ("GET", "/travellers/jonathan"), ("GET", "/travellers/nosferatu"),
                ("POST", "/inspect"), ("GET", "/crypt/../wine-cellar"), ("GET", "/bats")]


@pytest.fixture(scope="module")
def scraped(probes) -> dict[str, object]:
    """The families the student's metrics expose after a known mix of requests."""
    text = probes("ch10", "ch10_monitoring").scrape(GATE_TRAFFIC)
    assert isinstance(text, str), "the probe's scrape did not come back as text"
    return {family.name: family for family in text_string_to_metric_families(text)}


def count(family, **labels: str) -> float:
    return sum(s.value for s in family.samples
               if s.name.endswith("_total") and s.labels == labels)


def family(scraped: dict, name: str, kind: str):
    found = scraped.get(name)
    assert found is not None, f"no metric named {name} in the registry you were given"
    assert found.type == kind, f"{name} is a {found.type}; it should be a {kind}"
    return found


@pytest.mark.exercise("10.1")
@pytest.mark.points(2)
def test_requests_are_counted_by_route_template(scraped):
    """10.1 gate_requests_total counts requests by route template, method and status"""
    requests = family(scraped, "gate_requests", "counter")
    routes = {s.labels.get("route") for s in requests.samples}
    assert "/travellers/mina" not in routes, \
        "the route label holds raw paths: use the route's template, or the series multiply"
    assert count(requests, route="/travellers/{name}", method="GET", status="200") == 3
    assert count(requests, route="/inspect", method="POST", status="200") == 1


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_refusals_and_unknown_paths_are_counted(scraped):
    """10.1 A 4xx is counted with its status, and unknown paths share the label "unmatched\""""
    requests = family(scraped, "gate_requests", "counter")
    assert count(requests, route="/travellers/{name}", method="GET", status="403") == 1, \
        "a refusal raised with HTTPException must be counted with its own status"
    assert count(requests, route="unmatched", method="GET", status="404") == 2, \
        "every path that matches no route must be counted under the one label 'unmatched'"


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_latency_is_a_histogram_by_route(scraped):
    """10.1 gate_request_duration_seconds is a histogram labelled by route"""
    duration = family(scraped, "gate_request_duration_seconds", "histogram")
    counts = {s.labels.get("route"): s.value for s in duration.samples
              if s.name.endswith("_count")}
    assert counts.get("/travellers/{name}") == 4 and counts.get("unmatched") == 2, \
        "every request answered must be observed once, under its route template"
    assert all(set(s.labels) <= {"route", "le"} for s in duration.samples), \
        "the histogram has one label, route"


# Exercise 10.2 ------------------------------------------------------------------------------

def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool is needed to grade the alert rules: {INSTALL_HINT}",
                    pytrace=False)
    return found


@pytest.fixture(scope="module")
def rules(graded_file) -> Path:
    return graded_file("ch10_alerts/alerts.yml")


def run_cases(rules: Path, cases: Path, folder: Path) -> None:
    """Run promtool's unit tests ``cases`` on ``rules``, without their free-text annotations."""
    groups = yaml.safe_load(rules.read_text()) or {}
    for group in groups.get("groups") or []:
        for rule in group.get("rules") or []:
            rule.pop("annotations", None)
    (folder / "alerts.yml").write_text(yaml.safe_dump(groups))
    shutil.copy(cases, folder / cases.name)
    result = subprocess.run([promtool(), "test", "rules", str(folder / cases.name)],
                            capture_output=True, text=True, timeout=60, check=False)
    failed = [line.strip() for line in result.stdout.splitlines() + result.stderr.splitlines()
              if line.strip().startswith(("name:", "FAILED", "error", "Unit Testing"))]
    assert result.returncode == 0, "promtool test rules failed: " + " | ".join(failed[:8])


@pytest.mark.exercise("10.2")
@pytest.mark.points(1)
def test_rules_are_valid(rules):
    """10.2 promtool check rules accepts the file, and it defines both alerts"""
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, "promtool check rules: " + result.stderr.strip()[-400:]
    names = {rule.get("alert") for group in yaml.safe_load(rules.read_text())["groups"]
             for rule in group.get("rules") or []}
    assert {"GateErrorBudgetBurn", "GateSlowTail"} <= names, \
        "define the alerts GateErrorBudgetBurn and GateSlowTail"


@pytest.mark.exercise("10.2")
@pytest.mark.points(1)
def test_public_cases(rules, tmp_path):
    """10.2 Both alerts pass the cases in autograder/ch10/alerts_public_test.yml"""
    run_cases(rules, PUBLIC_CASES, tmp_path)


@pytest.mark.exercise("10.2")
@pytest.mark.points(2)
@pytest.mark.parametrize("cases", ["ch10_errors_test.yml", "ch10_slow_test.yml"])
def test_instructor_cases(rules, tmp_path, cases):
    """10.2 Both alerts pass the instructor's cases (not in the student copy)"""
    if not (HIDDEN_CASES / cases).is_file():
        pytest.skip("graded by your instructor with cases you have not seen")
    run_cases(rules, HIDDEN_CASES / cases, tmp_path)


# Exercise 10.3 ------------------------------------------------------------------------------

@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
def test_psi_of_a_sample_against_itself_is_zero(ch10):
    """10.3 psi is 0 for identical samples, positive and growing for shifted ones"""
    values = np.random.default_rng(7).gamma(2.0, size=4000)
    assert ch10.psi(values, values) == pytest.approx(0.0, abs=1e-9)
    small, large = ch10.psi(values, values * 1.1), ch10.psi(values, values * 1.5)
    assert 0 < small < large, "a larger shift must give a larger PSI"


@pytest.mark.exercise("10.3")
@pytest.mark.points(2)
@pytest.mark.parametrize("bins", [10, 4])
def test_psi_matches_the_definition(ch10, bins):
    """10.3 psi bins at the reference's quantiles, floors empty bins and sums the terms"""
    rng = np.random.default_rng(bins)
    reference = rng.normal(size=3000)
    for live in (rng.normal(0.3, 1.2, size=500), rng.normal(5.0, 0.1, size=200)):
        expected = reference_psi(Reference.from_values(reference, bins), live)
        assert ch10.psi(reference, live, bins=bins) == pytest.approx(expected, rel=1e-6), \
            "the PSI differs from the definition in the docstring (bins, edges or floor)"


@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
def test_psi_refuses_empty_samples(ch10):
    """10.3 psi raises ValueError for an empty sample"""
    with pytest.raises(ValueError):
        ch10.psi(np.arange(10.0), np.array([]))


@pytest.mark.exercise("10.3")
@pytest.mark.points(2)
def test_the_alarm_rings_for_makeup_and_not_for_clean(ch10):
    """10.3 is_drifting stays quiet for clean crowds and rings for make-up"""
    reference = cheek_saturation(make_portraits(1000, seed=SPLITS["train"])[0])
    for seed in range(20, 26):
        for population, expected in (("clean", False), ("makeup", True)):
            window = cheek_saturation(make_portraits(200, seed=seed, population=population)[0])
            rang = bool(ch10.is_drifting(ch10.psi(reference, window)))
            assert rang == expected, (f"a {population} crowd (seed {seed}) "
                                      f"{'rang' if rang else 'did not ring'} the alarm")
