"""/metrics on a port of its own: off the front door, counted the same, closed at shutdown."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from vampire_detector.service.metrics_port import MetricsPort
from vampire_detector.torch_serving import create_app


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_metrics_leave_the_service_port_for_their_own(settings):
    separate = settings.model_copy(update={"metrics_port": 0, "metrics_host": "127.0.0.1"})
    with TestClient(create_app(separate, load_in_background=False)) as client:
        port = client.app.state.metrics_port.port
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 404, "the front door no longer shows them"
        status, text = scrape(port)
        assert status == 200
        health = [s for family in text_string_to_metric_families(text) for s in family.samples
                  if s.name == "vampire_http_requests_total" and s.labels["route"] == "/health"]
        assert [s.value for s in health] == [1.0]
        assert scrape(port, "/docs")[0] == 404
    with pytest.raises(urllib.error.URLError):  # the lifespan's end closed the port
        scrape(port)


def test_a_second_worker_leaves_the_port_to_the_first():
    first = MetricsPort(lambda: b"", "127.0.0.1", 0)
    assert first.start()
    try:
        second = MetricsPort(lambda: b"", "127.0.0.1", first.port)
        assert not second.start()
        second.stop()  # harmless when it never started
    finally:
        first.stop()


def test_the_metrics_port_speaks_openmetrics_when_asked():
    seen = []

    def exposition(openmetrics_format: bool = False) -> bytes:
        seen.append(openmetrics_format)
        return b"# EOF\n" if openmetrics_format else b""

    port = MetricsPort(exposition, "127.0.0.1", 0)
    assert port.start()
    try:
        url = f"http://127.0.0.1:{port.port}/metrics"
        request = urllib.request.Request(url, headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
    finally:
        port.stop()
    assert seen == [True, False]
