"""The service's own counters, read from its /metrics page."""

from __future__ import annotations

import pytest

from vampire_detector.harness.scrape import service_report

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


def test_the_service_report_can_count_only_what_happened_since_a_baseline():
    earlier = PAGE.replace("} 90.0", "} 40.0").replace("_count 10.0", "_count 4.0") \
        .replace("_sum 90.0", "_sum 30.0")
    report = service_report(PAGE, baseline=earlier)
    assert (report["requests"], report["2xx"], report["4xx"]) == (50, 50, 0)
    assert report["mean batch size"] == pytest.approx(60 / 6)
