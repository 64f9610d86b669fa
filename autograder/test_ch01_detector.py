"""Chapter 1 — The detector.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). There the probes of
``autograder/probes/ch01.py`` hand your functions a VampireNet and portraits and describe what
comes back (values, shape, dtype, device, gradients, the batches the model saw and whether
autograd was recording then); the expected values are computed here, with the grader's own copy
of the model. The service's upload reader (``vampire_detector.service.uploads``) and the
library's ``Detector`` cannot be imported by your chapter file while it is graded.

Wrong answers these tests catch, each with feedback that names the problem:

- 1.1 ``forgets-eval``: the model left in training mode (dropout, batch statistics).
- 1.1 ``keeps-autograd``: the forward pass runs with autograd on and returns a graph.
- 1.1 ``detaches-instead-of-inference-mode``: autograd on during the forward, the result
  detached afterwards (it looks right and costs a graph per call).
- 1.1 ``softmax-over-the-batch``: softmax taken over the portraits (dim 0), not the classes.
- 1.1 ``ignores-batch-size``: chunks of a fixed 32 whatever ``batch_size`` says.
- 1.1 ``one-portrait-at-a-time``: a model call per portrait instead of per chunk.
- 1.1 ``copies-the-library``: the library's ``Detector`` fed un-normalised portraits.
- 1.2 ``mean-as-p95``: the budget checked against the mean latency.
- 1.2 ``slowest-call-as-p95``: the budget checked against the slowest call.
- 1.2 ``budget-is-exclusive``: a p95 exactly at the budget refused.
- 1.2 ``throughput-by-mean-latency``: throughput over the mean latency, not the median.
- 1.2 ``largest-batch-that-fits``: the largest batch size that fits, whatever its throughput.
- 1.2 ``keeps-the-warm-up``: the warm-up calls counted.
- 1.2 ``ties-to-the-larger-batch``: a tie in throughput given to the larger batch size.
- 1.3 ``no-normalisation``: pixels scaled to [0, 1] but not normalised.
- 1.3 ``bgr-channel-order``: channels reversed (OpenCV's habit).
- 1.3 ``reshape-instead-of-transpose``: (H, W, C) pixels reshaped, not transposed, to (C, H, W).
- 1.3 ``skips-the-rgb-conversion``: grey, palette and RGBA images not converted to RGB.
- 1.3 ``opens-without-decoding``: ``Image.open`` checked, the pixels decoded outside the check.
- 1.3 ``stretches-instead-of-cropping``: a picture that is not square squashed to 64 x 64.
- 1.3 ``copies-the-library``: the service's ``read_portrait``, which reads PNG, JPEG and WebP
  only.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from autograder.checks import refusal
from autograder.sandbox import SandboxError
from vampire_detector.images import MEAN, STD, encode, to_png
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
    # a little noise: preprocessed inputs need not be whole grey levels (think of a resize)
    noise = torch.randn(len(portraits), 3, 64, 64, generator=torch.Generator().manual_seed(1))
    inputs = to_batch(portraits) + 0.05 * noise
    probabilities = returned_tensor(probe.predict_proba(inputs.numpy())["results"][0])
    assert probabilities.shape == (len(inputs), 2), (
        f"expected one row of two probabilities per portrait, got shape "
        f"{tuple(probabilities.shape)}")
    assert torch.allclose(probabilities.sum(1), torch.ones(len(inputs)), atol=1e-5), (
        "each row must sum to 1: apply softmax over the two classes of each portrait (dim=1)")
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
    seen = probe.predict_proba(to_batch(portraits[:4]).numpy())
    probabilities = seen["results"][0]
    returned_tensor(probabilities)
    assert probabilities["device"] == "cpu", "move the probabilities back to the CPU"
    assert not probabilities["requires_grad"], (
        "the result still tracks gradients: inference needs no autograd graph")
    assert seen["autograd"] and not any(seen["autograd"]), (
        "autograd was recording while the model ran (detaching the result afterwards is too "
        "late): run the model under torch.inference_mode()")


@pytest.mark.exercise("1.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("batch_size", [16, 50])
def test_predict_proba_batches_its_input(probe, portraits, batch_size):
    """1.1 predict_proba feeds the model chunks of batch_size portraits"""
    seen = probe.predict_proba(to_batch(portraits).numpy(), batch_size=batch_size)["batches"]
    assert seen, "the model was never called"
    assert max(seen) <= batch_size, (
        f"with batch_size={batch_size} the model received {max(seen)} portraits in one call")
    assert sum(seen) == len(portraits), "every portrait must go through the model exactly once"
    assert len(seen) == -(-len(portraits) // batch_size), (
        f"{len(portraits)} portraits with batch_size={batch_size} took {len(seen)} calls of the "
        "model: fill each chunk with batch_size portraits (only the last may be smaller)")


# Exercise 1.2 ------------------------------------------------------------------------------

def steady(median: float, tail: float, n: int = 100) -> list[float]:
    """``n`` latencies: 90% at ``median`` ms, the slowest 10% at ``tail`` ms, interleaved."""
    return [tail if i % 10 == 9 else median for i in range(n)]


def choose(ch01, samples: dict[int, list[float]], budget_ms: float, warmup: int,
           why: str) -> object:
    """The student's choice, where one batch size fits; a failure saying ``why`` on a refusal."""
    try:
        return ch01.choose_batch_size(samples, budget_ms=budget_ms, warmup=warmup)
    except ValueError as error:
        pytest.fail(f"choose_batch_size raised ValueError ({error}) although a batch size "
                    f"fits: {why}", pytrace=False)


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_prefers_throughput(ch01):
    """1.2 choose_batch_size picks the highest throughput among the batch sizes that fit"""
    samples = {1: [1.0] * 50, 8: [2.0] * 50, 32: [5.0] * 50, 128: [30.0] * 50}
    why = ("all four fit the budget, so the one that handles the most portraits per millisecond "
           "should win; the largest batch is not always the fastest")
    assert choose(ch01, samples, 100.0, 0, why) == 32, why


@pytest.mark.exercise("1.2")
@pytest.mark.points(2)
def test_choose_batch_size_judges_by_the_tail(ch01):
    """1.2 choose_batch_size rejects a batch size whose p95 breaks the budget"""
    samples = {8: steady(2.0, 4.0), 32: steady(5.0, 60.0)}
    assert choose(ch01, samples, 20.0, 0, "batch size 8 fits") == 8, (
        "a batch size whose mean or median fits but whose p95 breaks the budget was chosen: "
        "judge each batch size by its p95")


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_forgives_a_few_slow_calls(ch01):
    """1.2 choose_batch_size keeps a batch size whose p95 fits despite a few slow calls"""
    few_slow = [500.0 if i % 33 == 32 else 2.0 for i in range(100)]  # 3 calls in 100
    samples = {4: [2.0] * 100, 8: few_slow}
    why = ("a batch size whose p95 fits the budget was rejected for its 3 slowest calls in 100: "
           "the budget holds the p95, not the slowest call (nor the p99)")
    assert choose(ch01, samples, 20.0, 0, why) == 8, why


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_budget_is_inclusive(ch01):
    """1.2 choose_batch_size keeps a batch size whose p95 equals the budget"""
    samples = {4: [2.0] * 100, 32: steady(8.0, 10.0)}  # p95 of batch 32: exactly 10 ms
    why = ("a batch size whose p95 is exactly the budget was rejected: it fits when its p95 is "
           "at most the budget")
    assert choose(ch01, samples, 10.0, 0, why) == 32, why


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_throughput_over_the_median(ch01):
    """1.2 choose_batch_size divides the batch size by the median latency"""
    # batch 8: median 2 ms, mean 2.52 ms; batch 16: 4.2 ms every time; both fit
    samples = {8: [15.0 if i % 25 == 24 else 2.0 for i in range(100)], 16: [4.2] * 100}
    why = ("throughput is the batch size over the median latency, not the mean: the slow "
           "calls are judged by the p95 already")
    assert choose(ch01, samples, 20.0, 0, why) == 8, why


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_breaks_ties_to_the_smaller(ch01):
    """1.2 choose_batch_size gives a tie in throughput to the smaller batch size"""
    why = ("two batch sizes have the same throughput (4 portraits per ms): the smaller one "
           "must win, whatever the order of the dictionary")
    for samples in ({16: [4.0] * 20, 8: [2.0] * 20}, {8: [2.0] * 20, 16: [4.0] * 20}):
        assert choose(ch01, samples, 20.0, 0, why) == 8, why


@pytest.mark.exercise("1.2")
@pytest.mark.points(2)
def test_choose_batch_size_ignores_warmup(ch01):
    """1.2 choose_batch_size leaves the warm-up calls out"""
    samples = {8: [400.0] * 3 + [2.0] * 20, 32: [500.0] * 3 + [5.0] * 20}
    why = "the slow warm-up calls were counted: drop the first `warmup` latencies of each list"
    assert choose(ch01, samples, 20.0, 3, why) == 32, why


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_choose_batch_size_refuses_impossible_budgets(ch01):
    """1.2 choose_batch_size raises ValueError when nothing fits or nothing is left"""
    refusal(lambda: ch01.choose_batch_size({8: [50.0] * 20}, budget_ms=10.0, warmup=0),
            "a budget that no batch size fits", "raise ValueError when nothing fits")
    refusal(lambda: ch01.choose_batch_size({8: [1.0] * 3}, budget_ms=10.0, warmup=3),
            "a batch size with no latencies after the warm-up",
            "raise ValueError when a batch size has nothing left to judge it by")


# Exercise 1.3 ------------------------------------------------------------------------------

def channels_first(image: np.ndarray) -> torch.Tensor:
    """``(1, 3, H, W)`` float32 pixels of an RGB ``uint8`` image, in [0, 255]."""
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32))[None]


def normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def what_differs(tensor: torch.Tensor, image: np.ndarray) -> str:
    """Which classic slip, if any, turns the RGB ``uint8`` ``image`` into ``tensor``."""
    slips = {
        "the pixels are in [0, 1] but not normalised with the training mean and std":
            channels_first(image) / 255,
        "the pixels are still in [0, 255]: scale them to [0, 1], then normalise them":
            channels_first(image),
        "the channels are in BGR order: keep Pillow's RGB order":
            to_batch(np.ascontiguousarray(image[..., ::-1])[None]),
        "the pixels were reshaped from (H, W, C) to (C, H, W): transpose them instead":
            normalised(torch.from_numpy(image.astype(np.float32) / 255).reshape(1, 3, 64, 64)),
    }
    for slip, wrong in slips.items():
        if tensor.shape == wrong.shape and torch.allclose(tensor, wrong, atol=1e-4):
            return slip
    return ("the values differ from the training preprocessing: scale, channel order, layout "
            "and normalisation must match it exactly")


def preprocessed(probe, data: bytes, what: str) -> tuple[torch.Tensor, dict]:
    """The student's tensor for ``data``, with a failure naming ``what`` when it is refused."""
    try:
        seen = probe.preprocess_upload(data)
    except (NotImplementedError, SandboxError):
        raise
    except Exception as error:
        pytest.fail(f"{what} was refused with {type(error).__name__} ({str(error)[:200]}): "
                    "convert every colour mode to RGB and read every format Pillow reads",
                    pytrace=False)
    tensor = returned_tensor(seen)
    assert tuple(tensor.shape) == (1, 3, 64, 64), (
        f"{what} gave shape {tuple(tensor.shape)}, not (1, 3, 64, 64)")
    return tensor, seen


def decoded(data: bytes) -> np.ndarray:
    """The grader's own RGB pixels of an encoded image."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.exercise("1.3")
@pytest.mark.points(2)
def test_preprocess_matches_training(probe, portraits):
    """1.3 preprocess_upload reproduces the training preprocessing for a PNG portrait"""
    tensor, seen = preprocessed(probe, to_png(portraits[0]), "a 64x64 PNG portrait")
    assert seen["dtype"] == "torch.float32", f"expected float32, got {seen['dtype']}"
    assert torch.allclose(tensor, to_batch(portraits[:1]), atol=1e-5), (
        what_differs(tensor, portraits[0]))


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_preprocess_converts_colour_modes(probe, portraits):
    """1.3 preprocess_upload accepts RGBA, grayscale and palette images"""
    picture = Image.fromarray(portraits[1])
    rgba, _ = preprocessed(probe, encode(picture.convert("RGBA")), "an RGBA PNG")
    assert torch.allclose(rgba, to_batch(portraits[1:2]), atol=1e-5), (
        "an opaque RGBA image must match RGB: " + what_differs(rgba, portraits[1]))
    for mode in ("L", "P"):
        data = encode(picture.convert(mode))
        tensor, _ = preprocessed(probe, data, f"a mode {mode} PNG")
        assert torch.allclose(tensor, to_batch(decoded(data)[None]), atol=1e-5), (
            f"a mode {mode} PNG: convert it to RGB first, then preprocess as in training")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF", "WEBP"])
def test_preprocess_reads_any_format(probe, portraits, fmt):
    """1.3 preprocess_upload reads BMP, TIFF, GIF and WebP as well as PNG and JPEG"""
    buffer = io.BytesIO()
    Image.fromarray(portraits[4]).save(buffer, format=fmt, **({"lossless": True}
                                                               if fmt == "WEBP" else {}))
    tensor, _ = preprocessed(probe, buffer.getvalue(), f"a {fmt} portrait")
    assert torch.allclose(tensor, to_batch(decoded(buffer.getvalue())[None]), atol=1e-5), (
        f"a {fmt} portrait: " + what_differs(tensor, decoded(buffer.getvalue())))


def framed(image: np.ndarray, tall: bool) -> np.ndarray:
    """``image`` between two dark bands of 18 pixels: above and below, or left and right."""
    pad = ((18, 18), (0, 0), (0, 0)) if tall else ((0, 0), (18, 18), (0, 0))
    return np.pad(image, pad, constant_values=12)


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("tall", [True, False], ids=["64x100", "100x64"])
def test_preprocess_crops_the_centred_square(probe, portraits, tall):
    """1.3 preprocess_upload cuts the centred square out of a picture that is not square"""
    picture = framed(portraits[2], tall)
    size = f"{picture.shape[1]}x{picture.shape[0]}"
    tensor, _ = preprocessed(probe, to_png(picture), f"a {size} PNG")
    assert torch.allclose(tensor, to_batch(portraits[2:3]), atol=1e-5), (
        f"a {size} PNG (a portrait between two dark bands) did not give the portrait back: "
        "cut out the centred square, do not stretch the picture to 64x64")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_preprocess_resizes(probe, portraits):
    """1.3 preprocess_upload resizes larger and non-square images to 64x64"""
    preprocessed(probe, encode(Image.fromarray(portraits[2]).resize((100, 80)), "JPEG"),
                 "a 100x80 JPEG")
    large, _ = preprocessed(probe, encode(Image.fromarray(portraits[2]).resize((256, 256)),
                                          "JPEG"), "a 256x256 JPEG")
    pixels = large * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert (pixels * 255 - channels_first(portraits[2])).abs().mean() < 30, (
        "a 256x256 JPEG of a portrait no longer looks like the portrait at 64x64: resize the "
        "whole picture (with bilinear resampling), do not cut a 64x64 piece out of it")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["empty", "text", "truncated"])
def test_preprocess_rejects_bad_uploads(ch01, portraits, case):
    """1.3 preprocess_upload rejects empty, non-image and truncated uploads with ValueError"""
    png = to_png(portraits[3])
    data = {"empty": b"", "text": b"garlic and holy water", "truncated": png[: len(png) // 2]}
    what = {"empty": "an empty upload", "text": "a text file",
            "truncated": "a truncated PNG (cut short in transit)"}[case]
    why = {"empty": "an empty upload must raise ValueError",
           "text": "bytes that are not an image must raise ValueError",
           "truncated": "Image.open reads only the header: decode the pixels (image.load()) "
                        "where you turn Pillow's errors into ValueError"}[case]
    message = refusal(lambda: ch01.preprocess_upload(data[case]), what, why)
    assert message.strip(), "the ValueError needs a message that says what is wrong"
