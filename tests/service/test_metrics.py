"""The service exposes the metrics the night watch reads, with route templates as labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from vampire_detector.images import to_png


def samples(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_prediction_moves_every_detector_metric(client, portraits):
    before = samples(client)
    files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
    label = client.post("/predict", files=files).json()["label"]
    after = samples(client)
    route = {"route": "/predict", "method": "POST", "status": "200"}
    assert value(after, "vampire_http_requests_total", **route) == value(
        before, "vampire_http_requests_total", **route) + 1
    assert value(after, "vampire_http_request_duration_seconds_count", **route) > 0
    assert value(after, "vampire_predictions_total", label=label) == value(
        before, "vampire_predictions_total", label=label) + 1
    for name in ("vampire_model_inference_seconds_count", "vampire_batch_size_count",
                 "vampire_queue_wait_seconds_count"):
        assert value(after, name) > value(before, name), name
    assert any(n == "vampire_model_info" and v == 1 for (n, _), v in after.items())
    assert ("vampire_drift_psi", (("signal", "input"),)) in after


def test_errors_are_counted_by_template_and_status(client):
    client.post("/predict", files={"image": ("x.txt", b"shopping list", "text/plain")})
    client.get("/no/such/crypt")
    found = samples(client)
    assert value(found, "vampire_http_requests_total", route="/predict", method="POST",
                 status="415") >= 1
    assert value(found, "vampire_http_requests_total", route="unmatched", method="GET",
                 status="404") >= 1
