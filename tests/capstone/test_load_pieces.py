"""The load test's pieces: the mixed workload, the bookkeeping, /proc, /metrics, the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vampire_detector.harness.ledger import (
    BATCHED,
    ONE_PROCESS,
    WORKERS,
    best_threads,
    ledger_rows,
    ledger_servers,
    previous_step,
)
from vampire_detector.harness.loadtest import Samples, Upload, mixed_workload, outcome
from vampire_detector.harness.resources import (
    ResourceTrace,
    cpu_seconds,
    process_tree,
    rss_bytes,
)
from vampire_detector.harness.scrape import service_report
from vampire_detector.harness.soak import SoakResult
from vampire_detector.portraits import make_portraits
from vampire_detector.release import Release


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


def test_proc_reports_a_process_tree_its_memory_and_cpu():
    child = subprocess.Popen([sys.executable, "-c", "import time; print(1, flush=True); "
                              "time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # the interpreter is up
        assert child.pid in process_tree(os.getpid())
        alone = rss_bytes(child.pid)
        assert 1_000_000 < alone < rss_bytes(os.getpid())  # the tree includes the child
        assert cpu_seconds(os.getpid()) > 0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_memory_growth_is_measured_over_the_second_half():
    warming = ResourceTrace(rss=[100, 150, 200, 200, 201, 200])
    assert warming.second_half_growth() == (1, pytest.approx(0.005))
    leaking = ResourceTrace(rss=[100, 110, 120, 130, 140, 150])
    assert leaking.second_half_growth() == (20, pytest.approx(20 / 130))
    busy = ResourceTrace(times_s=[0.0, 2.0], cpu_s=[1.0, 4.0])
    assert busy.cpu_cores() == pytest.approx(1.5)


PAGE = """\
# TYPE vampire_http_requests_total counter
vampire_http_requests_total{method="POST",route="/predict",status="200"} 90.0
vampire_http_requests_total{method="POST",route="/predict",status="413"} 4.0
vampire_http_requests_total{method="POST",route="/predict",status="422"} 6.0
vampire_http_requests_total{method="GET",route="/ready",status="200"} 3.0
# TYPE vampire_batch_size histogram
vampire_batch_size_bucket{le="+Inf"} 10.0
vampire_batch_size_count 10.0
vampire_batch_size_sum 90.0
"""


def test_the_service_report_adds_up_the_scraped_counters():
    report = service_report(PAGE)
    assert (report["requests"], report["2xx"], report["4xx"], report["5xx"]) == (100, 90, 10, 0)
    assert report["mean batch size"] == pytest.approx(9.0)
    assert report["mean model call ms"] != report["mean model call ms"]  # nan: never observed


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


def test_the_ledger_compares_each_step_with_the_one_it_improves(tmp_path: Path):
    servers = ledger_servers(Release(tmp_path / "a.onnx", tmp_path / "a-int8.onnx"), cores=2)
    names = [s.name for s in servers]
    assert previous_step(names[0], names) is None
    assert previous_step(names[2], names) == names[1]
    assert previous_step(ONE_PROCESS, names) == previous_step(WORKERS, names) == BATCHED
    assert servers[-1].workers == 2 and servers[-2].env["VAMPIRE_THREADS"] == "2"
    results = {name: Samples(latencies_ms=[10.0] * (i + 1), seconds=1.0)
               for i, name in enumerate(names)}
    assert best_threads(results) == WORKERS
    rows = ledger_rows(servers, results)
    assert rows[0]["vs naive"] == "1.00x" and rows[0]["vs previous"] == ""
    assert rows[3]["vs previous"] == "1.33x"  # 4 against 3 requests per second
    assert rows[5]["vs previous"] == "1.50x" and rows[5]["step"].endswith("(chosen)")


def test_the_service_report_can_count_only_what_happened_since_a_baseline():
    earlier = PAGE.replace("} 90.0", "} 40.0").replace("_count 10.0", "_count 4.0") \
        .replace("_sum 90.0", "_sum 30.0")
    report = service_report(PAGE, baseline=earlier)
    assert (report["requests"], report["2xx"], report["4xx"]) == (50, 50, 0)
    assert report["mean batch size"] == pytest.approx(60 / 6)
