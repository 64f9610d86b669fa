"""Chapter 15's wrong answers: the load-test summary and the error-budget arithmetic."""

from tests.grading.mistakes import Mistake

OK = "ok = sorted(s.latency_s for s in samples if s.status is not None and 200 <= s.status < 300)"

MISTAKES = [
    Mistake("percentiles-in-seconds", "15.1", "milliseconds",
            replace=(("ok[math.ceil(p / 100 * len(ok)) - 1] * 1000",
                      "ok[math.ceil(p / 100 * len(ok)) - 1]"),)),
    Mistake("percentiles-over-every-request", "15.1", "2xx latencies",
            replace=((OK, "ok = sorted(s.latency_s for s in samples)"),)),
    Mistake("rank-off-by-one", "15.1", "nearest-rank",
            replace=(("ok[math.ceil(p / 100 * len(ok)) - 1]",
                      "ok[min(math.ceil(p / 100 * len(ok)), len(ok) - 1)]"),)),
    Mistake("percentile-by-truncation", "15.1", "nearest-rank",
            replace=(("ok[math.ceil(p / 100 * len(ok)) - 1]", "ok[int(p / 100 * len(ok))]"),)),
    Mistake("error-rate-over-failures-only", "15.1", "share of all requests",
            replace=(("return hits / len(samples)",
                      "return hits / max(1, sum(s.status != 200 for s in samples))"),)),
    Mistake("throughput-counts-failures", "15.1", "2xx answers per second",
            replace=(("throughput=len(ok) / (ended - began)",
                      "throughput=len(samples) / (ended - began)"),)),
    Mistake("wall-time-ends-at-last-send", "15.1", "to the last answer",
            replace=(("ended = max(s.started_s + s.latency_s for s in samples)",
                      "ended = max(s.started_s for s in samples)"),)),
    Mistake("burn-rate-is-the-error-rate", "15.2", "burns at rate 1",
            replace=(("return (failures / requests) / (1 - slo) if requests else 0.0",
                      "return failures / requests if requests else 0.0"),)),
    Mistake("budget-clamped-at-zero", "15.2", "overspent budget is negative",
            replace=(("return 1.0 - burn_rate(slo, requests, failures)",
                      "return max(0.0, 1.0 - burn_rate(slo, requests, failures))"),)),
    Mistake("no-validation", "15.2", "ValueError",
            replace=(("    if not 0 < slo < 1:\n        raise", "    if False:\n        raise"),
                     ("    if not 0 <= failures <= requests:\n        raise",
                      "    if False:\n        raise"))),
    Mistake("page-on-either-window", "15.2", "the burn is over",
            replace=(("threshold\n            and burn_rate",
                      "threshold\n            or burn_rate"),)),
]
