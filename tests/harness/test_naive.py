"""Renfield's endpoint, the benchmark's baseline."""

from __future__ import annotations

from vampire_detector.images import to_png


def test_renfields_endpoint_answers_but_validates_nothing(portraits):
    from fastapi.testclient import TestClient

    from vampire_detector.harness.naive import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
        assert client.post("/predict", files=files).json()["label"] in ("human", "vampire")
        assert client.post("/predict", files={"image": ("x", b"x", "text/plain")}
                           ).status_code == 500  # exactly what the real service never does
