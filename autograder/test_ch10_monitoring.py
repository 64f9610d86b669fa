"""Chapter 10 — Monitoring.

The instrumentation is graded on a small gate app (built in the sandbox by the probe
``autograder/probes/ch10.py``), read back here through Prometheus's own text format. The alert
rules are run by promtool against recorded series: some of the cases are in autograder/ch10/,
the rest only your instructor has. The drift score is checked against the definition, computed
here, and the alarm on scripted scores and on a night of portraits that the generator draws.

Sealed: your code runs in a sandboxed process (the ``submission`` and ``probes`` fixtures); the
expected values are computed here. The library's own request metrics and drift score
(``vampire_detector.service.metrics``, ``vampire_detector.drift``) cannot be imported by
ch10_monitoring.py while it is graded.

Wrong answers these tests catch, each with feedback that names the problem:

- 10.1 ``copies-the-library``: the library's request middleware imported instead of written.
- 10.1 ``default-buckets``: the histogram's default buckets, where 0.3 s is no bucket edge.
- 10.1 ``milliseconds-observed``: milliseconds observed into a ``_seconds`` histogram.
- 10.1 ``raw-paths-as-labels``: the raw path as the route label (unbounded series).
- 10.1 ``crashes-not-counted``: a request whose handler raised is neither counted nor timed.
- 10.1 ``counted-before-the-handler-ran``: route and status read before ``call_next``, so
  every request is "unmatched" and 200.
- 10.2 ``alert-without-for``: no ``for:``, so a one-minute blip of errors pages.
- 10.2 ``client-errors-count``: refused uploads (4xx) counted as the detector's errors.
- 10.2 ``rate-over-one-minute``: a 1-minute rate, blind to errors that come and go.
- 10.2 ``tail-as-p95``: the 95th percentile instead of the 99th.
- 10.2 ``alert-per-route``: one error alert per route instead of one for the service.
- 10.3 ``copies-the-library``: the library's drift score and alarm imported.
- 10.3 ``bins-from-the-live-sample``: bins cut at the live sample's quantiles (or the
  arguments swapped).
- 10.3 ``log10``: the common logarithm instead of the natural one.
- 10.3 ``empty-bins-unfloored``: an empty bin left at 0, giving an infinite or NaN PSI.
- 10.3 ``alarm-at-the-threshold``: a score of exactly 0.25 rings the alarm.
- 10.3 ``alarm-without-hysteresis``: the alarm follows each score alone and flaps.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from vampire_detector.drift import cheek_saturation
from vampire_detector.harness.prometheus import INSTALL_HINT
from vampire_detector.portraits import SPLITS, make_portraits

AUTOGRADER = Path(__file__).resolve().parent
PUBLIC_CASES = AUTOGRADER / "ch10" / "alerts_public_test.yml"
HIDDEN_CASES = AUTOGRADER / "hidden"


@pytest.fixture(scope="module")
def ch10(submission):
    return submission("ch10_monitoring")


# Exercise 10.1 ------------------------------------------------------------------------------

SLO_S, SLOW_S = 0.3, 0.35  # the gate's promise; how long the probe's /slow takes
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
GATE_TRAFFIC = [
    ("GET", "/travellers/mina"), ("GET", "/travellers/lucy"), ("GET", "/travellers/jonathan"),
    ("GET", "/travellers/nosferatu"),  # refused with HTTPException(403)
    ("BREW", "/travellers/mina"),  # a method HTTP does not define: 405
    ("POST", "/inspect"), ("DELETE", "/inspect"),  # 200, then 405
    ("GET", "/crypt"),  # its handler raises RuntimeError
    ("GET", "/crypt/../wine-cellar"), ("GET", "/bats"),  # no such routes: 404
    ("GET", "/slow"),  # answered after SLOW_S
]
TEMPLATES = {"/travellers/{name}", "/inspect", "/slow", "/crypt", "unmatched"}


@pytest.fixture(scope="module")
def scraped(probes) -> dict[str, object]:
    """The families the student's metrics expose after GATE_TRAFFIC."""
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


def label_values(family, label: str) -> set[str]:
    return {s.labels[label] for s in family.samples if label in s.labels}


@pytest.mark.exercise("10.1")
@pytest.mark.points(2)
def test_requests_are_counted_by_route_template(scraped):
    """10.1 gate_requests_total counts requests by route template, method and status"""
    requests = family(scraped, "gate_requests", "counter")
    routes = label_values(requests, "route")
    raw = sorted(routes - TEMPLATES)
    assert not raw, (f"the route label holds raw paths ({', '.join(raw)}): label each request "
                     "with its route's template, or every new path a client invents makes a "
                     "new series")
    assert routes - {"unmatched"}, (
        "every request was counted as 'unmatched': was it counted before the handler ran? The "
        "route (and the status) are known only once call_next has routed and answered it")
    assert count(requests, route="/travellers/{name}", method="GET", status="200") == 3, \
        "the three GET requests to /travellers/{name} answered 200 are not counted as such"
    assert count(requests, route="/inspect", method="POST", status="200") == 1, \
        "the POST to /inspect answered 200 is not counted as such"


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_refusals_and_unknown_paths_keep_their_status(scraped):
    """10.1 A 4xx is counted with its own status, and unknown paths share "unmatched\""""
    requests = family(scraped, "gate_requests", "counter")
    assert count(requests, route="/travellers/{name}", method="GET", status="403") == 1, \
        "a refusal raised with HTTPException must be counted with its own status (403 here)"
    assert count(requests, route="/inspect", method="DELETE", status="405") == 1, \
        "a DELETE to /inspect (a POST route) must be counted under /inspect with its 405"
    assert count(requests, route="unmatched", method="GET", status="404") == 2, \
        "every path that matches no route must be counted under the one label 'unmatched'"


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_a_handler_that_raised_is_counted_as_500(scraped):
    """10.1 A request whose handler raised is counted and timed as a 500"""
    requests = family(scraped, "gate_requests", "counter")
    duration = family(scraped, "gate_request_duration_seconds", "histogram")
    assert count(requests, route="/crypt", method="GET", status="500") == 1, (
        "the request whose handler raised is not counted as a 500 under /crypt: call_next "
        "raises the handler's exception, so count in a finally (or except) around it")
    timed = sum(s.value for s in duration.samples
                if s.name.endswith("_count") and s.labels.get("route") == "/crypt")
    assert timed == 1, "the request whose handler raised must be timed too, once"


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_unknown_methods_share_the_label_other(scraped):
    """10.1 A method HTTP does not define is counted as "other\""""
    requests = family(scraped, "gate_requests", "counter")
    strange = sorted(label_values(requests, "method") - METHODS - {"other"})
    assert not strange, (f"method labels {strange}: a client may send any token as a method; "
                         "count those outside METHODS as 'other'")
    assert count(requests, route="/travellers/{name}", method="other", status="405") == 1, \
        "the BREW request to /travellers/mina must be counted with method 'other' and its 405"


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_latency_is_a_histogram_by_route(scraped):
    """10.1 gate_request_duration_seconds is a histogram labelled by route alone"""
    duration = family(scraped, "gate_request_duration_seconds", "histogram")
    assert all(set(s.labels) <= {"route", "le"} for s in duration.samples), \
        "the histogram has one label, route (each more label multiplies its buckets' series)"
    counts = {s.labels.get("route"): s.value for s in duration.samples
              if s.name.endswith("_count")}
    assert counts.get("/travellers/{name}") == 5 and counts.get("unmatched") == 2, \
        "every request answered must be observed once, under its route template"


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_buckets_are_cut_for_the_slo(scraped):
    """10.1 The histogram's buckets have the 300 ms SLO as an edge, with edges on both sides"""
    duration = family(scraped, "gate_request_duration_seconds", "histogram")
    edges = sorted({float(s.labels["le"]) for s in duration.samples
                    if s.name.endswith("_bucket") and s.labels.get("le") != "+Inf"})
    assert edges, "the histogram has no buckets that anything was observed into"
    assert edges[-1] < 100, (f"a bucket edge of {edges[-1]:g}: edges of a _seconds histogram are "
                             "in seconds, not milliseconds")
    assert any(math.isclose(edge, SLO_S) for edge in edges), (
        "0.3 s, the SLO, is not a bucket edge: between two edges a request's side of the "
        "promise is only guessed by interpolation")
    below = sum(edge < SLO_S - 1e-9 for edge in edges)
    above = sum(edge > SLO_S + 1e-9 for edge in edges)
    assert below >= 2 and above >= 2, (f"{below} bucket edges below 0.3 s and {above} above: "
                                       "keep at least two on each side of the SLO")


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_latency_is_observed_in_seconds(scraped):
    """10.1 A request that took 0.35 s is observed as 0.35 (seconds), over the SLO's bucket"""
    duration = family(scraped, "gate_request_duration_seconds", "histogram")
    slow = {s.name.rsplit("_", 1)[-1]: s.value for s in duration.samples
            if s.labels.get("route") == "/slow" and not s.name.endswith("_bucket")}
    assert slow.get("count") == 1, "the one request to /slow must be observed once, as /slow"
    assert slow.get("sum", 0) >= SLOW_S, "/slow took over 0.35 s, and was observed as less"
    assert slow["sum"] < 30, ("the request to /slow was observed in milliseconds: observe "
                              "seconds into a histogram whose name ends in _seconds")
    under_slo = [s.value for s in duration.samples if s.name.endswith("_bucket")
                 and s.labels.get("route") == "/slow" and s.labels.get("le") != "+Inf"
                 and float(s.labels["le"]) <= SLO_S]
    assert not any(under_slo), "the 0.35 s request is counted in a bucket at or below 0.3 s"


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
    lines = [line.strip() for line in result.stdout.splitlines() + result.stderr.splitlines()]
    failed = list(dict.fromkeys(line.removeprefix("name:").strip().rstrip(",")
                                for line in lines if line.startswith("name:")))
    errors = [line for line in lines if line.lower().startswith("error")]
    assert result.returncode == 0, (
        "promtool test rules failed these cases: " + " | ".join(failed[:6] + errors[:3])
        if failed or errors else "promtool test rules failed: " + " | ".join(lines[-6:]))


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

RING_ABOVE, CLEAR_BELOW = 0.25, 0.1


def definition(reference, live, bins: int, *, edges=None, log=np.log, floor=None) -> float:
    """The PSI of the docstring, and (through the keywords) the wrong ones it is told from."""
    reference, live = np.asarray(reference, np.float64), np.asarray(live, np.float64)
    if edges is None:
        edges = np.quantile(reference, np.arange(1, bins) / bins)

    def shares(values):
        counts = np.bincount(np.digitize(values, edges), minlength=bins) / values.size
        return np.maximum(counts, 0.5 / values.size if floor is None else floor)

    was, now = shares(reference), shares(live)
    return float(np.sum((now - was) * log(now / was)))


def what_differs(got: float, reference, live, bins: int) -> str:
    """Which plausible wrong PSI ``got`` is, in words that do not give the right value away."""
    if not math.isfinite(got):
        return ("the PSI is infinite or NaN: an empty bin must count as half a value (a share "
                "of 0.5 / n of its sample), so that its logarithm stays finite")
    close = lambda value: math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-12)  # noqa: E731
    reference, live = np.asarray(reference, np.float64), np.asarray(live, np.float64)
    quantiles = np.arange(1, bins) / bins
    if close(definition(reference, live, bins, edges=np.quantile(live, quantiles))):
        return ("the bins are cut at the quantiles of the live sample (or the arguments are "
                "swapped): cut them at the reference's quantiles")
    if close(definition(reference, live, bins, log=np.log10)):
        return "the PSI uses log10: it is defined with the natural logarithm, ln"
    widths = np.linspace(reference.min(), reference.max(), bins + 1)[1:-1]
    if close(definition(reference, live, bins, edges=widths)):
        return "the bins have equal widths: cut them at the reference's quantiles"
    if any(close(definition(reference, live, bins, floor=floor)) for floor in (1e-4, 1e-6)):
        return ("an empty bin gets a fixed floor: it must count as half a value, a share of "
                "0.5 / n of its sample")
    return ("the PSI differs from the definition in the docstring (the edges, the empty bins "
            "or the sum)")


@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
def test_psi_of_a_sample_against_itself_is_zero(ch10):
    """10.3 psi is 0 for identical samples, positive and growing for shifted ones"""
    values = np.random.default_rng(7).gamma(2.0, size=4000)
    assert ch10.psi(values, values) == pytest.approx(0.0, abs=1e-9), \
        "a sample against itself must score 0"
    small, large = ch10.psi(values, values * 1.1), ch10.psi(values, values * 1.5)
    assert 0 < small < large, "a larger shift must give a larger PSI"


@pytest.mark.exercise("10.3")
@pytest.mark.points(2)
@pytest.mark.parametrize("bins", [10, 4])
def test_psi_matches_the_definition(ch10, bins):
    """10.3 psi cuts at the reference's quantiles, counts empty bins as half a value, uses ln"""
    rng = np.random.default_rng(bins)
    reference = rng.normal(size=3000)  # 2999 * k / bins is never whole: no edge is a value
    for live in (rng.normal(0.3, 1.2, size=500), rng.normal(1.5, 0.4, size=201)):
        got = float(ch10.psi(reference, live, bins=bins))
        assert math.isclose(got, definition(reference, live, bins), rel_tol=1e-6), \
            what_differs(got, reference, live, bins)


@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
def test_psi_stays_finite_when_bins_are_empty(ch10):
    """10.3 psi is finite, as defined, when the live sample leaves most bins empty"""
    reference = np.random.default_rng(3).exponential(size=1000)
    live = np.full(200, 7.5)  # every traveller in the last bin
    got = float(ch10.psi(reference, live))
    assert math.isclose(got, definition(reference, live, 10), rel_tol=1e-6), \
        what_differs(got, reference, live, 10)


@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
def test_psi_refuses_empty_samples(ch10):
    """10.3 psi raises ValueError for an empty sample"""
    with pytest.raises(ValueError):
        ch10.psi(np.arange(10.0), np.array([]))
    with pytest.raises(ValueError):
        ch10.psi(np.array([]), np.arange(10.0))


def expected_alarm(scores: list[float]) -> list[bool]:
    ringing, states = False, []
    for score in scores:
        ringing = True if score > RING_ABOVE else False if score < CLEAR_BELOW else ringing
        states.append(ringing)
    return states


def first_difference(got: list, scores: list[float]) -> str:
    """The first window where the alarm is wrong, said without the expected states."""
    if len(got) != len(scores):
        return f"alarm returned {len(got)} states for {len(scores)} scores: one per score"
    if got == [score > RING_ABOVE for score in scores]:
        return ("the alarm follows each score alone: once ringing, it must stay on until a "
                "score is below 0.1 (hysteresis), not stop at the first score under 0.25")
    wrong = next(i for i, (state, right) in enumerate(zip(got, expected_alarm(scores),
                                                          strict=True)) if state != right)
    return (f"after window {wrong} (score {scores[wrong]:.3f}) your alarm is "
            f"{'ringing' if got[wrong] else 'quiet'}, which the rule does not allow: it rings "
            "above 0.25, and once ringing stays on until a score is below 0.1")


@pytest.mark.exercise("10.3")
@pytest.mark.points(2)
def test_alarm_rings_above_and_clears_below(ch10):
    """10.3 alarm rings above 0.25 and, once ringing, stays on until a score is below 0.1"""
    assert list(ch10.alarm([])) == [], "no scores, no states"
    for scores in ([0.05, 0.2, 0.26, 0.2, 0.3, 0.12, 0.11, 0.05, 0.24, 0.08, 0.9, 0.0],
                   [0.3, 0.15, 0.24, 0.2, 0.09, 0.2, 0.5]):
        got = [bool(state) for state in ch10.alarm(scores)]
        assert got == expected_alarm(scores), first_difference(got, scores)


@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
def test_alarm_at_exactly_the_thresholds(ch10):
    """10.3 A score of exactly 0.25 does not ring the alarm, and exactly 0.1 does not clear it"""
    assert [bool(s) for s in ch10.alarm([0.25])] == [False], \
        "a score of exactly 0.25 is not above RING_ABOVE: the alarm must stay quiet"
    assert [bool(s) for s in ch10.alarm([0.3, 0.1])] == [True, True], \
        "a score of exactly 0.1 is not below CLEAR_BELOW: the alarm must keep ringing"


NIGHT_SEED, WINDOW, STEP = 43, 200, 100


@pytest.fixture(scope="module")
def night() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Cheek colours of the training reference and of a night at the gate: 500 clean
    travellers, 400 in make-up, 500 clean again; and what each window of the night holds."""
    reference = cheek_saturation(make_portraits(1000, seed=SPLITS["train"])[0])
    clean = cheek_saturation(make_portraits(1000, seed=NIGHT_SEED)[0])
    makeup = cheek_saturation(make_portraits(400, seed=NIGHT_SEED + 1000,
                                             population="makeup")[0])
    crowd = np.concatenate([clean[:500], makeup, clean[500:]])
    painted = np.r_[np.zeros(500), np.ones(400), np.zeros(500)]
    held = [f"portraits {i}-{i + WINDOW}, {painted[i:i + WINDOW].sum():.0f} in make-up"
            for i in range(0, len(crowd) - WINDOW + 1, STEP)]
    return reference, crowd, held


@pytest.mark.exercise("10.3")
@pytest.mark.points(2)
def test_the_alarm_through_a_night_at_the_gate(ch10, night):
    """10.3 Through a night of portraits, your psi and alarm ring for make-up, then clear"""
    reference, crowd, held = night
    windows = [crowd[i:i + WINDOW] for i in range(0, len(crowd) - WINDOW + 1, STEP)]
    scores = [float(ch10.psi(reference, window)) for window in windows]
    got = [bool(state) for state in ch10.alarm(scores)]
    right = expected_alarm([definition(reference, window, 10) for window in windows])
    assert len(got) == len(right), "alarm must return one state per score"
    for state, should, what in zip(got, right, held, strict=True):
        assert state == should, (f"the window of {what}: your alarm was "
                                 f"{'ringing' if state else 'quiet'}, against the rule (rings "
                                 "above 0.25, clears below 0.1) or with a wrong psi")
