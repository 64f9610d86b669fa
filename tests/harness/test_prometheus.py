"""A real Prometheus scrapes the real service on loopback, and the drift alarm rings.

The rules are the project's own ``deploy/prometheus/alerts.yml``, with their ``for:`` cut to a
second and a one-second scrape, so that the test takes seconds rather than hours.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.programs import require
from vampire_detector.drift import WINDOW
from vampire_detector.harness.launch import running_server
from vampire_detector.harness.prometheus import (
    INSTALL_HINT,
    eventually,
    find_prometheus,
    running_prometheus,
)
from vampire_detector.images import to_png
from vampire_detector.portraits import SPLITS, make_portraits

BATCH = 25  # portraits per /predict/batch request
APP = "vampire_detector.torch_serving:create_app"
ENV = {"VAMPIRE_MAX_BATCH_FILES": str(BATCH), "VAMPIRE_WARMUP_BATCHES": "1"}
pytestmark = pytest.mark.timeout(300)


def send(service: httpx.Client, population: str, n: int = WINDOW) -> None:
    """``n`` portraits from ``population``, in batch requests."""
    images = make_portraits(n, seed=SPLITS["test"], population=population)[0]
    for start in range(0, n, BATCH):
        files = [("images", (f"{i}.png", to_png(image), "image/png"))
                 for i, image in enumerate(images[start:start + BATCH])]
        assert service.post("/predict/batch", files=files).status_code == 200


def test_prometheus_scrapes_the_service_and_the_drift_alarm_rings(tmp_path: Path) -> None:
    require(find_prometheus(), INSTALL_HINT)
    with (running_server(APP, factory=True, env=ENV) as url,
          running_prometheus(tmp_path, url) as prometheus,
          httpx.Client(base_url=url, timeout=30, trust_env=False) as service):
        # the drift references are computed just after /ready: wait until they watch
        eventually(lambda: prometheus.query('vampire_drift_psi{signal="input"}'))
        send(service, "clean")
        served = 'sum(vampire_predictions_total{job="vampire-detector"})'
        eventually(lambda: (prometheus.value(served) or 0) >= WINDOW)
        routes = prometheus.query('vampire_http_requests_total{status="200"}')
        assert {r["metric"]["route"] for r in routes} >= {"/predict/batch", "/ready"}
        assert prometheus.query("vampire_http_request_duration_seconds_bucket")
        time.sleep(3)  # a few evaluations of the rules on the clean window
        assert not prometheus.alerts("VampireDetectorDrift"), "a clean crowd rang the alarm"

        send(service, "makeup")
        # both signals drift; which alert fires first depends on the scrape and rule timing
        eventually(lambda: "input" in {alert["labels"]["signal"]
                                       for alert in prometheus.alerts("VampireDetectorDrift")})


def test_two_workers_add_up_in_one_scrape(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, any worker's /metrics counts every worker's requests."""
    env = {**ENV, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    requests = 40
    with (running_server(APP, factory=True, env=env, workers=2) as url,
          httpx.Client(base_url=url, timeout=30, trust_env=False) as service):
        # a new connection per request lets the kernel spread them over both workers
        for _ in range(requests):
            assert httpx.get(f"{url}/health", trust_env=False).status_code == 200
        text = service.get("/metrics").text
    counted = [s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "vampire_http_requests_total"
               and s.labels == {"route": "/health", "method": "GET", "status": "200"}]
    assert counted == [requests]
    assert len(list(tmp_path.glob("counter_*.db"))) == 2, "one file per worker"
