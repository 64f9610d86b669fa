import pytest
import torch

from vampire_detector.device import pick_device


def test_explicit_cpu_wins(monkeypatch):
    monkeypatch.setenv("VAMPIRE_DEVICE", "cuda")
    assert pick_device("cpu") == torch.device("cpu")


def test_environment_variable_chooses(monkeypatch):
    monkeypatch.setenv("VAMPIRE_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_default_is_cuda_exactly_when_available(monkeypatch):
    monkeypatch.delenv("VAMPIRE_DEVICE", raising=False)
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_asking_for_missing_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")
