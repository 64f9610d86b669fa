"""Chapter 1 — The detector."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vampire_detector.images import to_batch, to_png
from vampire_detector.portraits import make_portraits
from vampire_detector.weights import load_model


@pytest.fixture(scope="module")
def ch01(implementation):
    return implementation("ch01_detector")


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    images, _ = make_portraits(70, seed=7)
    return images


@pytest.fixture
def model() -> torch.nn.Module:
    return load_model("vampirenet", device=torch.device("cpu"))


def reference_probabilities(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(inputs), dim=1)


# Exercise 1.1 ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_predict_proba_matches_the_model(ch01, model, portraits):
    """1.1 predict_proba returns the model's class probabilities"""
    inputs = to_batch(portraits)
    probabilities = ch01.predict_proba(model, inputs)
    assert isinstance(probabilities, torch.Tensor), "return a torch.Tensor"
    assert probabilities.shape == (len(inputs), 2), (
        f"expected one row of two probabilities per portrait, got shape "
        f"{tuple(probabilities.shape)}")
    assert torch.allclose(probabilities.sum(1), torch.ones(len(inputs)), atol=1e-5), (
        "each row must sum to 1: apply softmax to the logits")
    assert torch.allclose(probabilities, reference_probabilities(model, inputs), atol=1e-5), (
        "the probabilities differ from the model's softmax outputs in eval mode")


@pytest.mark.points(2)
def test_predict_proba_uses_eval_mode(ch01, model, portraits):
    """1.1 predict_proba gives the same answer even when handed a model in train mode"""
    inputs = to_batch(portraits[:16])
    expected = reference_probabilities(model, inputs)
    model.train()
    torch.manual_seed(0)
    first = ch01.predict_proba(model, inputs)
    second = ch01.predict_proba(model, inputs)
    assert torch.allclose(first, second, atol=1e-6) and torch.allclose(first, expected,
                                                                        atol=1e-5), (
        "two calls gave different probabilities: dropout and batch norm are still in "
        "training mode")


@pytest.mark.points(1)
def test_predict_proba_returns_plain_cpu_tensors(ch01, model, portraits):
    """1.1 predict_proba builds no autograd graph and returns CPU tensors"""
    probabilities = ch01.predict_proba(model, to_batch(portraits[:4]))
    assert probabilities.device.type == "cpu", "move the probabilities back to the CPU"
    assert not probabilities.requires_grad, (
        "the result still tracks gradients: inference needs no autograd graph")


@pytest.mark.points(2)
def test_predict_proba_batches_its_input(ch01, model, portraits):
    """1.1 predict_proba never feeds the model more than batch_size portraits at once"""
    seen: list[int] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    ch01.predict_proba(model, to_batch(portraits), batch_size=32)
    assert seen, "the model was never called"
    assert max(seen) <= 32, "the model received more than batch_size portraits in one call"
    assert sum(seen) == len(portraits), "every portrait must go through the model exactly once"


# Exercise 1.2 ------------------------------------------------------------------------------

class FakeClock:
    """A clock that a fake workload advances by a scripted number of milliseconds per call."""

    def __init__(self, durations_ms: list[float]):
        self.now = 0.0
        self.durations = list(durations_ms)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += self.durations[self.calls % len(self.durations)] / 1000.0
        self.calls += 1


def steady_state_ms() -> list[float]:
    """90 calls of 2 ms, 8 of 10 ms, 2 of 50 ms, in a fixed shuffled order."""
    durations = [2.0] * 90 + [10.0] * 8 + [50.0] * 2
    np.random.default_rng(0).shuffle(durations)
    return durations


@pytest.mark.points(1)
def test_latency_calls_fn_warmup_plus_iters_times(ch01):
    """1.2 latency_percentiles calls fn exactly warmup + iters times"""
    clock = FakeClock([1.0])
    ch01.latency_percentiles(clock.work, warmup=3, iters=20, clock=clock)
    assert clock.calls == 23, f"fn was called {clock.calls} times for warmup=3 and iters=20"


@pytest.mark.points(2)
def test_latency_ignores_warmup(ch01):
    """1.2 latency_percentiles leaves the slow warm-up calls out"""
    clock = FakeClock([500.0] * 5 + steady_state_ms())
    result = ch01.latency_percentiles(clock.work, warmup=5, iters=100, clock=clock)
    assert set(result) >= {"p50", "p95", "p99"}, "return a dict with keys p50, p95 and p99"
    assert result["p99"] < 100, "the slow warm-up calls were counted in the percentiles"


@pytest.mark.points(2)
def test_latency_percentiles_in_milliseconds(ch01):
    """1.2 latency_percentiles reports the right percentiles, in milliseconds"""
    clock = FakeClock(steady_state_ms())
    result = ch01.latency_percentiles(clock.work, warmup=0, iters=100, clock=clock)
    values = (result.get("p50"), result.get("p95"), result.get("p99"))
    assert all(isinstance(value, (int, float)) for value in values), (
        "p50, p95 and p99 must be numbers")
    assert values[0] < values[1] < values[2], (
        "p50 < p95 < p99 must hold for this workload: time each call separately")
    close = [abs(value - want) <= 0.01 * want
             for value, want in zip(values, (2.0, 10.0, 50.0), strict=True)]
    assert all(close), (
        "the percentiles are wrong: time each call on its own, convert seconds to "
        "milliseconds, and take percentiles of the samples (not of their mean)")


# Exercise 1.3 ------------------------------------------------------------------------------

def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.points(2)
def test_preprocess_matches_training(ch01, portraits):
    """1.3 preprocess_upload reproduces the training preprocessing for a PNG portrait"""
    tensor = ch01.preprocess_upload(to_png(portraits[0]))
    assert isinstance(tensor, torch.Tensor), "return a torch.Tensor"
    assert tuple(tensor.shape) == (1, 3, 64, 64), (
        f"expected shape (1, 3, 64, 64), got {tuple(tensor.shape)}")
    assert tensor.dtype == torch.float32, f"expected float32, got {tensor.dtype}"
    assert torch.allclose(tensor, to_batch(portraits[:1]), atol=1e-5), (
        "the values differ from the training preprocessing: scale, channel order and "
        "normalisation must match exactly")


@pytest.mark.points(1)
def test_preprocess_converts_colour_modes(ch01, portraits):
    """1.3 preprocess_upload accepts RGBA, grayscale and palette images"""
    picture = Image.fromarray(portraits[1])
    expected = to_batch(portraits[1:2])
    rgba = ch01.preprocess_upload(encode(picture.convert("RGBA")))
    assert torch.allclose(rgba, expected, atol=1e-5), "an opaque RGBA image must match RGB"
    for mode in ("L", "P"):
        tensor = ch01.preprocess_upload(encode(picture.convert(mode)))
        assert tuple(tensor.shape) == (1, 3, 64, 64), (
            f"a mode {mode} image must become 3 channels, got {tuple(tensor.shape)}")


@pytest.mark.points(1)
def test_preprocess_resizes(ch01, portraits):
    """1.3 preprocess_upload resizes larger and non-square images to 64x64"""
    for size in ((256, 256), (100, 80)):
        data = encode(Image.fromarray(portraits[2]).resize(size), "JPEG")
        tensor = ch01.preprocess_upload(data)
        assert tuple(tensor.shape) == (1, 3, 64, 64), (
            f"a {size[0]}x{size[1]} JPEG gave shape {tuple(tensor.shape)}")


@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["empty", "text", "truncated"])
def test_preprocess_rejects_bad_uploads(ch01, portraits, case):
    """1.3 preprocess_upload rejects empty, non-image and truncated uploads with ValueError"""
    png = to_png(portraits[3])
    data = {"empty": b"", "text": b"garlic and holy water", "truncated": png[: len(png) // 2]}
    with pytest.raises(ValueError) as raised:
        ch01.preprocess_upload(data[case])
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"
