"""The servers comparison's bookkeeping (the measurement itself runs in the chapter and in
``benchmarks/bench_servers.py``; TorchServe's start is tested in ``test_torchserve.py``)."""

from __future__ import annotations

import pytest

from vampire_detector.harness.loadtest import Samples
from vampire_detector.harness.servers import (
    Comparison,
    Measured,
    Setting,
    Tried,
    batching_grid,
    best,
    layout_grid,
    model_file,
    summary_rows,
)


@pytest.mark.parametrize("options", [{"levels": ()}, {"levels": (0,)}, {"requests": 0},
                                     {"rounds": 0}, {"max_batch": 0}, {"workers": 0},
                                     {"threads": 0}, {"max_wait_ms": -1}])
def test_a_comparison_that_measures_nothing_is_refused(options):
    with pytest.raises(ValueError):
        Comparison(**options)


def test_cpu_time_is_reported_per_thousand_answered_requests():
    samples = Samples(latencies_ms=[10.0] * 200, seconds=2.0)
    measured = Measured(samples={8: samples}, cpu_s={8: 3.0}, peak_rss=300 * 2**20,
                        startup_s=4.25)
    (row,) = measured.rows("server")
    assert row["CPU s per 1,000 req"] == "15.0" and row["throughput req/s"] == "100.0"
    (summary,) = summary_rows({"server": measured})
    assert summary == {"server": "server", "start to ready s": "4.2", "peak RSS MB": "300"}
    assert summary_rows({"s": Measured()})[0]["start to ready s"] == "n/a"


def test_the_search_grid_tunes_batching_then_the_layouts_that_fit_two_cores():
    grid = batching_grid()
    assert len(grid) == 9 and {(s.max_batch, s.max_wait_ms) for s in grid} == {
        (b, d) for b in (8, 16, 32) for d in (2, 5, 10)}
    assert all((s.workers, s.threads) == (1, 1) for s in grid)
    layouts = layout_grid(Setting(1, 16, 5, 1))
    assert {(s.workers, s.threads) for s in layouts} == {(1, 2), (2, 1)}
    assert all((s.max_batch, s.max_wait_ms) == (16, 5) for s in layouts)


def test_the_best_setting_is_the_fastest_error_free_one_within_the_p95_budget():
    fast_but_slow_tail = Tried("s", Setting(max_batch=32), 500.0, 300.0, 0)
    erring = Tried("s", Setting(max_batch=16), 400.0, 80.0, 3)
    good = Tried("s", Setting(max_batch=8), 300.0, 90.0, 0)
    slower = Tried("s", Setting(workers=2), 250.0, 60.0, 0)
    assert best([fast_but_slow_tail, erring, good, slower], p95_budget_ms=100) == good
    assert best([fast_but_slow_tail], p95_budget_ms=100) is None
    assert best([fast_but_slow_tail, good], p95_budget_ms=300) == fast_but_slow_tail


def test_every_server_loads_the_same_model_file():
    assert model_file("vampirenet").name == "vampirenet.pt"
    with pytest.raises(ValueError, match="folder"):
        model_file("int8")
    with pytest.raises(ValueError, match="unknown model"):
        model_file("resnet50", None)
