"""The carnival night, for real: 10,000 mixed requests at concurrency 32 against the final
service (the INT8 release, micro-batching, one single-threaded worker per core).

No 5xx, no dropped connection, every bad upload answered with its 4xx, the server's own
counters in agreement, and its memory flat after warm-up (under 5% growth over the second
half). About 30 to 60 seconds on two cores, model export and quantization included.
"""

from __future__ import annotations

from vampire_detector.harness.ledger import final_server
from vampire_detector.harness.loadtest import mixed_workload
from vampire_detector.harness.soak import run_soak
from vampire_detector.portraits import make_portraits
from vampire_detector.release import build_release

REQUESTS, BAD_SHARE = 10_000, 0.1


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
