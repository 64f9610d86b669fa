"""The service exposes the metrics the night watch reads, with route templates as labels."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from vampire_detector.images import to_png
from vampire_detector.torch_serving import create_app


def samples(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def fresh(settings) -> Iterator[TestClient]:
    """A new app: its metrics start from zero, whatever other apps in this process counted."""
    with TestClient(create_app(settings, load_in_background=False)) as client:
        yield client


def test_a_prediction_moves_every_detector_metric_exactly_once(fresh, portraits):
    files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
    label = fresh.post("/predict", files=files).json()["label"]
    found = samples(fresh)
    route = {"route": "/predict", "method": "POST", "status": "200"}
    assert value(found, "vampire_http_requests_total", **route) == 1
    assert value(found, "vampire_http_request_duration_seconds_count", **route) == 1
    assert value(found, "vampire_predictions_total", label=label) == 1
    for name in ("vampire_model_inference_seconds_count", "vampire_batch_size_count",
                 "vampire_queue_wait_seconds_count"):
        assert value(found, name) == 1, name
    assert any(n == "vampire_model_info" and v == 1 for (n, _), v in found.items())
    assert ("vampire_drift_psi", (("signal", "input"),)) in found


def test_two_apps_in_one_process_keep_separate_counts(settings, fresh, portraits):
    files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
    for _ in range(3):
        assert fresh.post("/predict", files=files).status_code == 200
    with TestClient(create_app(settings, load_in_background=False)) as other:
        assert other.post("/predict", files=files).status_code == 200
        route = {"route": "/predict", "method": "POST", "status": "200"}
        assert value(samples(other), "vampire_http_requests_total", **route) == 1
    assert value(samples(fresh), "vampire_http_requests_total", **route) == 3


def test_importing_the_service_registers_no_metric():
    """Metrics belong to an app, not to the module: nothing lands on the global registry."""
    code = ("import prometheus_client as p, vampire_detector.service.app; "
            "print(sorted(m.name for m in p.REGISTRY.collect()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "vampire" not in out


def test_errors_are_counted_by_template_and_status(fresh):
    fresh.post("/predict", files={"image": ("x.txt", b"shopping list", "text/plain")})
    fresh.get("/no/such/crypt")
    fresh.get("/no/such/tomb")
    found = samples(fresh)
    assert value(found, "vampire_http_requests_total", route="/predict", method="POST",
                 status="415") == 1
    assert value(found, "vampire_http_requests_total", route="unmatched", method="GET",
                 status="404") == 2


OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def test_request_ids_ride_on_the_duration_histogram_as_exemplars(fresh, portraits):
    files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
    answer = fresh.post("/predict", files=files, headers={"X-Request-ID": "night-1"})
    assert answer.status_code == 200
    plain = fresh.get("/metrics")
    assert "night-1" not in plain.text  # the classic text format has no room for them
    scraped = fresh.get("/metrics", headers={"Accept": OPENMETRICS})
    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    assert scraped.text.rstrip().endswith("# EOF")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om

    exemplars = [s.exemplar for f in om(scraped.text) for s in f.samples
                 if s.name == "vampire_http_request_duration_seconds_bucket" and s.exemplar
                 and s.labels["route"] == "/predict"]
    assert [e.labels for e in exemplars] == [{"request_id": "night-1"}]
    assert 0 < exemplars[0].value < 5


def test_the_shadow_counter_is_exposed_at_zero(fresh):
    found = samples(fresh)
    for outcome in ("agree", "disagree", "error", "skipped"):
        assert ("vampire_shadow_comparisons_total", (("outcome", outcome),)) in found
