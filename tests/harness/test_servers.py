"""The servers comparison's bookkeeping (the measurement itself runs in the chapter and in
``benchmarks/bench_servers.py``; TorchServe's start is tested in ``test_torchserve.py``)."""

from __future__ import annotations

import pytest

from vampire_detector.harness.loadtest import Samples
from vampire_detector.harness.servers import Comparison, Measured, summary_rows


@pytest.mark.parametrize("options", [{"levels": ()}, {"levels": (0,)}, {"requests": 0},
                                     {"rounds": 0}, {"max_batch": 0}])
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
