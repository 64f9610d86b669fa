"""The load generator: servers under the same load, answers sorted by status class."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.bench_serve import parse
from vampire_detector.harness.launch import running_server
from vampire_detector.harness.loadtest import Samples, Upload, mixed_workload, one_round, outcome
from vampire_detector.images import to_png
from vampire_detector.portraits import make_portraits


def test_the_mixed_workload_has_the_share_of_bad_uploads_asked_for():
    portraits = make_portraits(8, seed=31)[0]
    uploads = mixed_workload(portraits, bad_share=0.1)
    bad = [u.expected_status for u in uploads if u.expected_status != 200]
    assert len(uploads) == 40 and sorted(bad) == [413, 415, 422, 422]
    assert all(u.expected_status == 200 for u in uploads[:9])  # spread out, not bunched
    assert len(mixed_workload(portraits, bad_share=0.0)) == len(portraits)
    with pytest.raises(ValueError):
        mixed_workload(portraits, bad_share=1.0)


def test_answers_are_sorted_by_status_class():
    assert [outcome(s) for s in (200, 404, 413, 500, 503, None)] == \
        ["ok", "4xx", "4xx", "5xx", "5xx", "transport"]
    good, bad = Upload(b"", {}), Upload(b"", {}, expected_status=422)
    samples = Samples()
    for upload, status in [(good, 200), (good, 500), (good, None), (bad, 422), (bad, 500),
                           (bad, 415)]:
        samples.record(upload, status, 5.0)
    s = samples.summary()
    assert (s["ok"], s["4xx"], s["5xx"], s["transport"]) == (1, 2, 2, 1)
    assert (s["bad_sent"], s["bad_refused"], s["errors"], s["requests"]) == (3, 1, 4, 6)
    assert samples.latencies_ms == [5.0]


def test_samples_summarise_throughput_and_percentiles():
    samples = Samples(latencies_ms=[float(i) for i in range(1, 101)], errors=2, seconds=4.0)
    summary = samples.summary()
    assert summary["requests"] == 102 and summary["errors"] == 2
    assert summary["throughput"] == pytest.approx(25.0)
    assert summary["p50_ms"] == pytest.approx(50.5)
    baseline = Samples(latencies_ms=[1.0] * 10, seconds=2.0)
    assert samples.row("x", baseline)["throughput vs naive"] == "5.00x"


def test_the_command_line_refuses_a_missing_model(tmp_path):
    contest, _ = parse(["--quick"])
    assert contest.rounds == 2
    with pytest.raises(SystemExit):
        parse(["--model-path", str(tmp_path / "missing.onnx")])


def test_a_round_against_a_real_server_counts_every_request(portraits):
    uploads = [Upload.of(to_png(p)) for p in portraits[:4]]
    env = {"VAMPIRE_RUNTIME": "eager", "VAMPIRE_WARMUP_BATCHES": "0"}
    with running_server("vampire_detector.torch_serving:create_app", factory=True,
                        env=env) as url:
        samples = Samples()
        asyncio.run(one_round(url, uploads, 20, 4, 30.0, samples))
    assert len(samples.latencies_ms) == 20 and samples.errors == 0 and samples.seconds > 0
