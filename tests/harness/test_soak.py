"""A long mixed run: what makes a soak fail, and a real 10,000-request soak."""

from __future__ import annotations

from dataclasses import replace

from vampire_detector.harness.ledger import (
    final_server,
)
from vampire_detector.harness.loadtest import Samples, mixed_workload
from vampire_detector.harness.resources import (
    ResourceTrace,
)
from vampire_detector.harness.soak import SoakResult, run_soak
from vampire_detector.portraits import make_portraits
from vampire_detector.release import build_release

REQUESTS, BAD_SHARE = 10_000, 0.1


def soak_result(rss, **counts) -> SoakResult:
    samples = Samples(latencies_ms=[1.0])
    samples.outcomes.update(counts)
    samples.bad_sent = samples.bad_refused = counts.get("4xx", 0)
    return SoakResult(samples, ResourceTrace(rss=rss), 1.0, {})


def test_a_soak_fails_on_server_errors_and_on_growing_memory():
    assert soak_result([100, 100, 100, 100], ok=10, **{"4xx": 2}).problems() == []
    assert "server errors" in soak_result([100] * 4, **{"5xx": 1}).problems()[0]
    assert "RSS grew" in soak_result([100, 100, 100, 110]).problems()[0]


def test_a_soak_cut_short_by_its_time_limit_fails():
    samples = Samples(latencies_ms=[1.0] * 3)
    short = SoakResult(samples, ResourceTrace(rss=[100] * 4), 1.0, {}, requested=5)
    assert short.problems() == ["the time limit stopped the run after 3 of 5 requests"]
    assert replace(short, requested=3).problems() == []


def test_ten_thousand_mixed_requests_leave_the_service_healthy(tmp_path):
    server = final_server(build_release(tmp_path))
    uploads = mixed_workload(make_portraits(64, seed=6)[0], BAD_SHARE)
    result = run_soak(server, uploads, requests=REQUESTS, concurrency=32, time_limit_s=240.0)
    summary = result.samples.summary()
    assert summary["requests"] == REQUESTS, "the run stopped before every request was sent"
    assert result.problems() == []
    assert summary["bad_sent"] == REQUESTS * BAD_SHARE and summary["4xx"] == summary["bad_sent"]
    service = result.service  # the server counted what the client saw
    assert (service["2xx"], service["4xx"], service["5xx"]) == \
        (summary["ok"], summary["4xx"], 0)
