"""Settings from the environment, and the shipped loader: ONNX files only."""

from __future__ import annotations

from typing import get_args

import pydantic
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.onnx_export import export_onnx
from vampire_detector.service.runtimes import PROVIDERS, load_predictor
from vampire_detector.service.settings import Provider, ServiceSettings


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


@pytest.mark.parametrize("runtime", ["eager", "torchscript"])
def test_the_shipped_loader_refuses_torch_runtimes_with_a_way_out(runtime):
    with pytest.raises(ValueError, match="torch_serving:create_app"):
        load_predictor(ServiceSettings(runtime=runtime))


def test_the_shipped_loader_needs_a_model_file():
    with pytest.raises(ValueError, match="VAMPIRE_MODEL_PATH"):
        load_predictor(ServiceSettings(runtime="onnx"))


def test_the_provider_setting_reaches_the_session(monkeypatch, tmp_path):
    model = export_onnx(Detector.from_weights("vampirenet").model, tmp_path / "v.onnx")
    monkeypatch.setenv("VAMPIRE_PROVIDER", "cpu")
    loaded = load_predictor(ServiceSettings(model_path=model))
    assert loaded.predictor.session.get_providers() == ["CPUExecutionProvider"]
    if not torch.cuda.is_available():  # CUDA asked for where it cannot run: no start, a reason
        with pytest.raises(ValueError, match="CUDAExecutionProvider"):
            load_predictor(ServiceSettings(model_path=model, provider="cuda"))
    monkeypatch.setenv("VAMPIRE_PROVIDER", "gpu")
    with pytest.raises(pydantic.ValidationError, match="provider"):
        ServiceSettings()


def test_every_provider_setting_names_its_providers():
    assert set(PROVIDERS) == set(get_args(Provider))
