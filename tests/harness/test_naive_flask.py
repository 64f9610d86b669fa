"""Renfield's endpoint in Flask: the same answers as the FastAPI one, served by a real gunicorn."""

from __future__ import annotations

import io

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from vampire_detector.harness import naive, naive_flask
from vampire_detector.harness.launch import running_server, server_command
from vampire_detector.images import to_png


def test_the_flask_endpoint_gives_the_fastapi_endpoints_answer(portraits):
    flask = naive_flask.create_app().test_client()
    with TestClient(naive.create_app()) as fastapi:
        for portrait in portraits[:4]:
            png = to_png(portrait)
            answer = flask.post("/predict", data={"image": (io.BytesIO(png), "p.png")},
                                content_type="multipart/form-data").get_json()
            files = {"image": ("p.png", png, "image/png")}
            expected = fastapi.post("/predict", files=files).json()
            assert answer["label"] == expected["label"]
            assert answer["probability"] == pytest.approx(expected["probability"], abs=1e-6)


def test_gunicorn_serves_the_factory_with_threads(portraits):
    command = server_command("pkg.mod:create_app", 8123, factory=True, server="gunicorn",
                             threads=4)
    assert command[-1] == "pkg.mod:create_app()"
    assert command[command.index("--threads") + 1] == "4"
    with pytest.raises(ValueError, match="uvicorn or gunicorn"):
        server_command("pkg.mod:app", 8123, server="hypercorn")
    with running_server("vampire_detector.harness.naive_flask:create_app", factory=True,
                        server="gunicorn", threads=2, ready_path="/health") as url:
        files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
        answer = httpx.post(f"{url}/predict", files=files, timeout=30, trust_env=False)
        assert answer.status_code == 200 and answer.json()["label"] in ("human", "vampire")
