import subprocess
import sys
import threading
import time

import torch

from vampire_detector.model import build_model
from vampire_detector.train import RECIPES, TrainConfig, ensure_weights, train
from vampire_detector.weights import (
    load_metadata,
    load_model,
    locked,
    save_weights,
    weights_path,
)

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


def test_production_weights_are_trained_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAMPIRE_WEIGHTS_CACHE", str(tmp_path))
    monkeypatch.setitem(RECIPES, "mobilenet_v3_small",
                        TrainConfig(arch="mobilenet_v3_small", epochs=1, n_train=64, n_val=32))
    messages: list[str] = []
    path = ensure_weights("mobilenet_v3_small", log=messages.append)
    assert path == tmp_path / "mobilenet_v3_small.pt" and path.exists()
    assert any("training them once" in message for message in messages)
    assert ensure_weights("mobilenet_v3_small", log=messages.append) == path
    assert sum("training them once" in message for message in messages) == 1
    assert not load_model("mobilenet_v3_small", device=torch.device("cpu")).training


def test_a_second_process_waits_for_the_training_instead_of_training_again(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("VAMPIRE_WEIGHTS_CACHE", str(tmp_path))
    monkeypatch.setitem(RECIPES, "mobilenet_v3_small",
                        TrainConfig(arch="mobilenet_v3_small", epochs=1, n_train=64, n_val=32))
    path, messages, found = tmp_path / "mobilenet_v3_small.pt", [], []
    waiter = threading.Thread(target=lambda: found.append(
        ensure_weights("mobilenet_v3_small", log=messages.append)))
    with locked(path):  # as if another process were training them
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive() and not messages, "it did not wait for the lock"
        save_weights(build_model("mobilenet_v3_small"), path, {"trained": "elsewhere"})
    waiter.join(timeout=60)
    assert found == [path] and not messages, "it trained weights that were already there"


def test_committed_weights_stay_in_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("VAMPIRE_WEIGHTS_CACHE", str(tmp_path))
    assert weights_path("vampirenet").parent.name == "weights"
    assert weights_path("resnet18") == tmp_path / "resnet18.pt"
