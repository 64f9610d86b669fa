import subprocess
import sys

import torch

from vampire_detector.train import TrainConfig, train
from vampire_detector.weights import load_metadata, load_model

TINY = TrainConfig(epochs=1, n_train=256, n_val=128, batch_size=32)


def test_same_seed_same_weights_and_accuracy():
    quiet = lambda message: None  # noqa: E731
    first, first_metrics = train(TINY, torch.device("cpu"), log=quiet)
    second, second_metrics = train(TINY, torch.device("cpu"), log=quiet)
    assert first_metrics["val_accuracy"] == second_metrics["val_accuracy"]
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_cli_trains_saves_and_reports(tmp_path):
    out = tmp_path / "tiny.pt"
    result = subprocess.run(
        [sys.executable, "-m", "vampire_detector.train", "--epochs", "1", "--n-train", "256",
         "--n-val", "128", "--device", "cpu", "--out", str(out)],
        capture_output=True, text=True, check=True)
    assert "held-out accuracy" in result.stdout
    model = load_model(path=out, device=torch.device("cpu"))
    assert not model.training
    assert out.with_suffix(".json").exists()


def test_cli_explains_bad_arguments():
    result = subprocess.run(
        [sys.executable, "-m", "vampire_detector.train", "--epochs", "0"],
        capture_output=True, text=True)
    assert result.returncode == 2 and "--epochs must be a positive integer" in result.stderr


def test_committed_weights_are_accurate_and_documented():
    metadata = load_metadata("vampirenet")
    assert metadata["metrics"]["val_accuracy"] >= 0.95
    assert metadata["config"]["arch"] == "vampirenet"
