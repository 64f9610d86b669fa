"""Settings from the environment, the three runtimes, and a real server in its own process."""

from __future__ import annotations

import httpx2 as httpx
import numpy as np
import pydantic
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.harness.launch import running_server
from vampire_detector.images import to_png
from vampire_detector.service.runtimes import load_predictor
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.torch_serving import load_any


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAMPIRE_RUNTIME", "torchscript")
    monkeypatch.setenv("VAMPIRE_MAX_BATCH_SIZE", "32")
    settings = ServiceSettings()
    assert (settings.runtime, settings.max_batch_size) == ("torchscript", 32)
    monkeypatch.setenv("VAMPIRE_RUNTIME", "tensorflow")
    with pytest.raises(pydantic.ValidationError):
        ServiceSettings()
    monkeypatch.delenv("VAMPIRE_RUNTIME")
    with pytest.raises(pydantic.ValidationError, match="not a file"):
        ServiceSettings(model_path=tmp_path / "missing.onnx")
    with pytest.raises(pydantic.ValidationError):
        ServiceSettings(threads=0)


@pytest.mark.parametrize("runtime", ["eager", "torchscript", "onnx"])
def test_every_runtime_serves_the_committed_model_alike(portraits, runtime):
    model = load_any(ServiceSettings(runtime=runtime))
    eager = Detector.from_weights("vampirenet", device=torch.device("cpu"))
    gap = np.abs(model.predictor.probabilities(portraits) - eager.probabilities(portraits)).max()
    assert gap < 1e-4
    assert model.version.startswith(f"vampirenet-{runtime}-")


@pytest.mark.parametrize("runtime", ["eager", "torchscript"])
def test_the_shipped_loader_refuses_torch_runtimes_with_a_way_out(runtime):
    with pytest.raises(ValueError, match="torch_serving:create_app"):
        load_predictor(ServiceSettings(runtime=runtime))


def test_the_shipped_loader_needs_a_model_file():
    with pytest.raises(ValueError, match="VAMPIRE_MODEL_PATH"):
        load_predictor(ServiceSettings(runtime="onnx"))


def test_a_real_server_starts_serves_and_stops(portraits):
    env = {"VAMPIRE_RUNTIME": "eager", "VAMPIRE_WARMUP_BATCHES": "1"}
    with running_server("vampire_detector.torch_serving:create_app", factory=True,
                        env=env) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, trust_env=False) as client:
            files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
            assert client.post("/predict", files=files).status_code == 200
            assert client.post("/predict", files={"image": ("x", b"x", "text/plain")}
                               ).status_code == 415
    with pytest.raises(httpx.TransportError), httpx.Client(trust_env=False) as client:
        client.get(url + "/health", timeout=1)


def test_renfields_endpoint_answers_but_validates_nothing(portraits):
    from fastapi.testclient import TestClient

    from vampire_detector.harness.naive import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        files = {"image": ("p.png", to_png(portraits[0]), "image/png")}
        assert client.post("/predict", files=files).json()["label"] in ("human", "vampire")
        assert client.post("/predict", files={"image": ("x", b"x", "text/plain")}
                           ).status_code == 500  # exactly what the real service never does
