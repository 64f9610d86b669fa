"""Chapter 1 — The detector.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). There the probes of
``autograder/probes/ch01.py`` hand your functions a VampireNet and portraits and describe what
comes back (values, shape, dtype, device, gradients, the batches the model saw); the expected
values are computed here, with the grader's own copy of the model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vampire_detector.images import encode, to_png
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model


@pytest.fixture(scope="module")
def ch01(submission):
    return submission("ch01_detector")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch01", "ch01_detector")


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


def returned_tensor(seen: dict) -> torch.Tensor:
    """The values of a tensor the probe saw returned, after checking that it was one."""
    assert seen.get("kind") == "Tensor", f"return a torch.Tensor, not a {seen.get('kind')}"
    return torch.from_numpy(np.asarray(seen["values"]))


# Exercise 1.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("1.1")
@pytest.mark.points(2)
def test_predict_proba_matches_the_model(probe, model, portraits):
    """1.1 predict_proba returns the model's class probabilities"""
    inputs = to_batch(portraits)
    probabilities = returned_tensor(probe.predict_proba(inputs.numpy())["results"][0])
    assert probabilities.shape == (len(inputs), 2), (
        f"expected one row of two probabilities per portrait, got shape "
        f"{tuple(probabilities.shape)}")
    assert torch.allclose(probabilities.sum(1), torch.ones(len(inputs)), atol=1e-5), (
        "each row must sum to 1: apply softmax to the logits")
    assert torch.allclose(probabilities, reference_probabilities(model, inputs), atol=1e-5), (
        "the probabilities differ from the model's softmax outputs in eval mode")


@pytest.mark.exercise("1.1")
@pytest.mark.points(2)
def test_predict_proba_uses_eval_mode(probe, model, portraits):
    """1.1 predict_proba gives the same answer even when handed a model in train mode"""
    inputs = to_batch(portraits[:16])
    expected = reference_probabilities(model, inputs)
    first, second = (returned_tensor(seen) for seen in
                     probe.predict_proba(inputs.numpy(), calls=2, train=True)["results"])
    assert torch.allclose(first, second, atol=1e-6) and torch.allclose(first, expected,
                                                                        atol=1e-5), (
        "two calls gave different probabilities: dropout and batch norm are still in "
        "training mode")


@pytest.mark.exercise("1.1")
@pytest.mark.points(1)
def test_predict_proba_returns_plain_cpu_tensors(probe, portraits):
    """1.1 predict_proba builds no autograd graph and returns CPU tensors"""
    probabilities = probe.predict_proba(to_batch(portraits[:4]).numpy())["results"][0]
    returned_tensor(probabilities)
    assert probabilities["device"] == "cpu", "move the probabilities back to the CPU"
    assert not probabilities["requires_grad"], (
        "the result still tracks gradients: inference needs no autograd graph")


@pytest.mark.exercise("1.1")
@pytest.mark.points(2)
def test_predict_proba_batches_its_input(probe, portraits):
    """1.1 predict_proba never feeds the model more than batch_size portraits at once"""
    seen = probe.predict_proba(to_batch(portraits).numpy(), batch_size=32)["batches"]
    assert seen, "the model was never called"
    assert max(seen) <= 32, "the model received more than batch_size portraits in one call"
    assert sum(seen) == len(portraits), "every portrait must go through the model exactly once"


# Exercise 1.2 ------------------------------------------------------------------------------

def steady(median: float, tail: float, n: int = 100) -> list[float]:
    """``n`` latencies: 90% at ``median`` ms, the slowest 10% at ``tail`` ms, interleaved."""
    return [tail if i % 10 == 9 else median for i in range(n)]


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_prefers_throughput(ch01):
    """1.2 choose_batch_size picks the highest throughput among the batch sizes that fit"""
    samples = {1: [1.0] * 50, 8: [2.0] * 50, 32: [5.0] * 50, 128: [30.0] * 50}
    assert ch01.choose_batch_size(samples, budget_ms=100.0, warmup=0) == 32, (
        "all four fit the budget, so the one that handles the most portraits per millisecond "
        "should win; the largest batch is not always the fastest")


@pytest.mark.exercise("1.2")
@pytest.mark.points(2)
def test_choose_batch_size_judges_by_the_tail(ch01):
    """1.2 choose_batch_size rejects a batch size whose p95 breaks the budget"""
    samples = {8: steady(2.0, 4.0), 32: steady(5.0, 60.0)}
    assert ch01.choose_batch_size(samples, budget_ms=20.0, warmup=0) == 8, (
        "a batch size whose mean fits but whose slowest calls break the budget was chosen: "
        "judge each batch size by its p95")


@pytest.mark.exercise("1.2")
@pytest.mark.points(2)
def test_choose_batch_size_ignores_warmup(ch01):
    """1.2 choose_batch_size leaves the warm-up calls out"""
    samples = {8: [400.0] * 3 + [2.0] * 20, 32: [500.0] * 3 + [5.0] * 20}
    assert ch01.choose_batch_size(samples, budget_ms=20.0, warmup=3) == 32, (
        "the slow warm-up calls were counted: drop the first `warmup` latencies of each list")


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_refuses_impossible_budgets(ch01):
    """1.2 choose_batch_size raises ValueError when nothing fits or nothing is left"""
    with pytest.raises(ValueError):
        ch01.choose_batch_size({8: [50.0] * 20}, budget_ms=10.0, warmup=0)
    with pytest.raises(ValueError):
        ch01.choose_batch_size({8: [1.0] * 3}, budget_ms=10.0, warmup=3)


# Exercise 1.3 ------------------------------------------------------------------------------


@pytest.mark.exercise("1.3")
@pytest.mark.points(2)
def test_preprocess_matches_training(probe, portraits):
    """1.3 preprocess_upload reproduces the training preprocessing for a PNG portrait"""
    seen = probe.preprocess_upload(to_png(portraits[0]))
    tensor = returned_tensor(seen)
    assert tuple(tensor.shape) == (1, 3, 64, 64), (
        f"expected shape (1, 3, 64, 64), got {tuple(tensor.shape)}")
    assert seen["dtype"] == "torch.float32", f"expected float32, got {seen['dtype']}"
    assert torch.allclose(tensor, to_batch(portraits[:1]), atol=1e-5), (
        "the values differ from the training preprocessing: scale, channel order and "
        "normalisation must match exactly")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_preprocess_converts_colour_modes(probe, portraits):
    """1.3 preprocess_upload accepts RGBA, grayscale and palette images"""
    picture = Image.fromarray(portraits[1])
    expected = to_batch(portraits[1:2])
    rgba = returned_tensor(probe.preprocess_upload(encode(picture.convert("RGBA"))))
    assert rgba.shape == expected.shape and torch.allclose(rgba, expected, atol=1e-5), (
        "an opaque RGBA image must match RGB")
    for mode in ("L", "P"):
        tensor = returned_tensor(probe.preprocess_upload(encode(picture.convert(mode))))
        assert tuple(tensor.shape) == (1, 3, 64, 64), (
            f"a mode {mode} image must become 3 channels, got {tuple(tensor.shape)}")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_preprocess_resizes(probe, portraits):
    """1.3 preprocess_upload resizes larger and non-square images to 64x64"""
    for size in ((256, 256), (100, 80)):
        data = encode(Image.fromarray(portraits[2]).resize(size), "JPEG")
        tensor = returned_tensor(probe.preprocess_upload(data))
        assert tuple(tensor.shape) == (1, 3, 64, 64), (
            f"a {size[0]}x{size[1]} JPEG gave shape {tuple(tensor.shape)}")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["empty", "text", "truncated"])
def test_preprocess_rejects_bad_uploads(ch01, portraits, case):
    """1.3 preprocess_upload rejects empty, non-image and truncated uploads with ValueError"""
    png = to_png(portraits[3])
    data = {"empty": b"", "text": b"garlic and holy water", "truncated": png[: len(png) // 2]}
    with pytest.raises(ValueError) as raised:
        ch01.preprocess_upload(data[case])
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"
