"""The load test's bookkeeping, and one tiny round against an in-process-started server."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.bench_serve import parse
from vampire_detector.harness.launch import running_server
from vampire_detector.harness.loadtest import Samples, Upload, one_round
from vampire_detector.images import to_png


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
