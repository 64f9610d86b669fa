"""The service with every runtime, and a real server in its own process."""

from __future__ import annotations

import httpx2 as httpx
import numpy as np
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.harness.launch import running_server
from vampire_detector.images import to_png
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.torch_serving import load_any


@pytest.mark.parametrize("runtime", ["eager", "torchscript", "onnx"])
def test_every_runtime_serves_the_committed_model_alike(portraits, runtime):
    model = load_any(ServiceSettings(runtime=runtime))
    eager = Detector.from_weights("vampirenet", device=torch.device("cpu"))
    gap = np.abs(model.predictor.probabilities(portraits) - eager.probabilities(portraits)).max()
    assert gap < 1e-4
    assert model.version.startswith(f"vampirenet-{runtime}-")


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
