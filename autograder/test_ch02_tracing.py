"""Chapter 2 — Tracing.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). There the probes of
``autograder/probes/ch02.py`` hand it a VampireNet (or a gate built on it) and its traces, load
your saved files in a fresh interpreter without the course library, and send back outputs and
facts; the expected values are computed here, with the grader's own copy of the model.

Wrong answers these tests catch, each with feedback that names the problem:

- 2.1 ``traces-in-train-mode``: the trace records dropout and batch statistics.
- 2.1 ``saves-the-state-dict``: ``torch.save`` of the weights, which needs the class to load.
- 2.1 ``trace-mode-not-restored``: the caller's model left in eval mode.
- 2.1 ``no-example-check``: a batch of ``uint8`` pixels traced as it is.
- 2.1 ``returns-nothing``: the file written, its path not returned.
- 2.2 ``whole-batch-at-once``: all candidates run as one batch, where a trace unrolled for one
  portrait fails on every one of them.
- 2.2 ``default-rtol``: ``torch.allclose`` with its default relative tolerance.
- 2.2 ``signed-difference``: ``got - expected > atol``, blind to a trace that reads too low.
- 2.2 ``trace-errors-escape``: the trace's error raised instead of counted.
- 2.2 ``no-argument-check``: empty candidates or a negative tolerance accepted.
- 2.3 ``not-frozen``: the trace returned with its weights still parameters.
- 2.3 ``eval-after-tracing``: traced in training mode, switched to eval mode to freeze.
- 2.3 ``optimized-for-inference``: ``optimize_for_inference``, whose graph cannot be saved.
- 2.3 ``border-mode-not-restored``: the caller's model left in eval mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.checks import refusal
from autograder.sandbox import SandboxError
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch02", "ch02_tracing")


@pytest.fixture(scope="module")
def bright() -> torch.Tensor:
    return to_batch(make_portraits(17, seed=21)[0])


@pytest.fixture(scope="module")
def dark() -> torch.Tensor:
    images = make_portraits(6, seed=22)[0]
    return to_batch((images * 0.1).astype(np.uint8))  # a night-time camera


@pytest.fixture
def model() -> torch.nn.Module:
    return load_model("vampirenet", device=CPU)


def eval_outputs(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(inputs)


# Exercise 2.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("2.1")
@pytest.mark.points(3)
def test_trace_loads_without_the_class(probe, model, bright):
    """2.1 trace_and_save writes a file that runs, in eval mode, where the class is unknown"""
    expected = [eval_outputs(model, bright[:1]), eval_outputs(model, bright)]
    # Renfield hands over the model straight from training
    seen = probe.trace(bright[:4].numpy(), train=True, batches=[bright[:1].numpy(),
                                                                bright.numpy()])
    assert seen["exists"], "return the path of the file you saved (no file is at that path)"
    assert "load_error" not in seen, (
        "a fresh Python process without vampire_detector could not load and run the file: "
        f"{seen.get('load_error')}")
    assert not seen["loaded_training"], (
        "the loaded module is in training mode: trace it in eval mode")
    for got, want, size in zip(seen["outputs"], expected, (1, 17), strict=True):
        got = torch.from_numpy(got)
        assert got.shape == want.shape, f"batch {size}: the loaded trace gave the wrong shape"
        assert torch.allclose(got, want, atol=1e-5), (
            f"batch {size}: the loaded trace's outputs differ from the model's eval-mode outputs")


@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_trace_leaves_the_model_mode(probe, bright, mode):
    """2.1 trace_and_save leaves the caller's model in the mode it was in"""
    seen = probe.trace(bright[:2].numpy(), train=mode == "train")
    assert seen["training_after"] == (mode == "train"), (
        f"the model was in {mode} mode before the call and not after it: restore its mode")


@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["one image", "uint8 pixels"])
def test_trace_rejects_bad_examples(probe, bright, case):
    """2.1 trace_and_save refuses an example that is not a float batch, with ValueError"""
    example = {"one image": bright[0], "uint8 pixels": torch.zeros(2, 3, 64, 64,
                                                                    dtype=torch.uint8)}[case]
    message = refusal(lambda: probe.trace(example.numpy()), f"an example of {case}",
                      "check the example before tracing: a float (N, 3, H, W) batch or "
                      "ValueError")
    assert message.strip(), "the ValueError needs a message that says what is wrong"


# Exercise 2.2 ------------------------------------------------------------------------------

def disagreements(probe, kind: str, example: torch.Tensor, candidates: torch.Tensor,
                  **options) -> list[int]:
    """The student's find_disagreements on a module and its trace, both made in the sandbox."""
    try:
        seen = probe.disagreements(kind, example.numpy(), candidates.numpy(), **options)
    except (NotImplementedError, SandboxError, ValueError):
        raise
    except Exception as error:
        last = (str(error).strip().splitlines() or [""])[-1][:200]
        pytest.fail(f"find_disagreements raised {type(error).__name__} ({last}): where the "
                    "trace raises on a candidate, it disagrees with the model there; catch the "
                    "error and count the candidate", pytrace=False)
    assert seen["is_list"], "return a list of indices"
    return seen["indices"]


@pytest.mark.exercise("2.2")
@pytest.mark.points(3)
def test_finds_a_baked_branch(probe, bright, dark):
    """2.2 find_disagreements finds the portraits a gate traced on a dark portrait gets wrong"""
    # the gate is traced on dark[:1]: the branch "refuse everyone" is now baked in
    candidates = torch.cat([dark[:2], bright[:3], dark[2:4], bright[3:5]])
    found = disagreements(probe, "gate", dark[:1], candidates)
    assert sorted(found) == found, "return the indices in ascending order"
    assert found == [2, 3, 4, 7, 8], (
        "these are not the candidates on which the trace and the eager gate disagree: run both "
        "on each candidate alone and compare")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_runs_each_candidate_alone(probe, bright, dark):
    """2.2 find_disagreements runs each candidate alone, where a trace unrolled for one works"""
    # the draft gate is traced on one bright portrait: its decision "judge it" is baked in, and
    # its loop is unrolled for a batch of one
    candidates = torch.cat([bright[:2], dark[:2], bright[2:4], dark[2:3]])
    found = disagreements(probe, "draft", bright[:1], candidates)
    assert found == [2, 3, 6], (
        "these are not the candidates on which the trace and the eager draft gate disagree "
        "(the dark ones): run both on each candidate alone, as a batch of one")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_tolerance_is_absolute(probe, bright):
    """2.2 find_disagreements flags a difference larger than atol, whatever its sign or scale"""
    # the trace reads higher or lower than its eager twin by `nudges`, on logits near 300
    nudges = [0.0, 5e-4, 2e-3, 3e-3, -2.5e-3, 0.01, -0.02]
    candidates = bright[:len(nudges)].clone()
    candidates[:, 0, 0, 0] = torch.tensor(nudges)
    found = disagreements(probe, "nudged", bright[:2], candidates, atol=1e-3)
    assert found == [i for i, nudge in enumerate(nudges) if abs(nudge) > 1e-3], (
        "these are not the candidates whose outputs differ by more than atol: compare the "
        "absolute difference with atol alone (rtol=0: large outputs get no extra room), and "
        "count a trace that reads too low as well as too high")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_no_false_alarms(probe, bright):
    """2.2 find_disagreements reports nothing for a faithful trace"""
    found = disagreements(probe, "model", bright[:4], bright[:8], atol=1e-4)
    assert found == [], "a faithful trace of VampireNet was reported to disagree"


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_counts_a_trace_that_fails(probe, bright):
    """2.2 find_disagreements counts the candidates on which the trace raises an error"""
    # the draft gate is traced on two portraits: its loop over them is unrolled
    found = disagreements(probe, "draft", bright[:2], bright[:3])
    assert found == [0, 1, 2], (
        "a trace that raises on a candidate disagrees with the model there: catch the error")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["no candidates", "negative atol"])
def test_disagreements_reject_bad_arguments(probe, bright, case):
    """2.2 find_disagreements refuses empty candidates and a negative tolerance"""
    candidates = bright[:0] if case == "no candidates" else bright[:2]
    atol = -1e-3 if case == "negative atol" else 1e-5
    message = refusal(lambda: probe.disagreements("model", bright[:2].numpy(),
                                                  candidates.numpy(), atol=atol),
                      f"{case} (an empty candidates tensor or atol=-0.001)",
                      "there is nothing to compare on, or no tolerance is negative: raise "
                      "ValueError")
    assert message.strip(), "the ValueError needs a message that says what is wrong"


# Exercise 2.3 ------------------------------------------------------------------------------

def outputs(seen: dict, key: str) -> list[torch.Tensor]:
    return [torch.from_numpy(output) for output in seen[key]]


@pytest.mark.exercise("2.3")
@pytest.mark.points(2)
def test_border_ready_matches_the_model(probe, model, bright):
    """2.3 border_ready gives the model's eval-mode outputs at batch 1 and 17"""
    batches = (bright[:1], bright)
    expected = [eval_outputs(model, batch) for batch in batches]
    seen = probe.border_ready(bright[:4].numpy(), [batch.numpy() for batch in batches])
    assert seen["training_after"], "the model was in train mode before the call: restore its mode"
    for batch, got, want in zip(batches, outputs(seen, "outputs"), expected, strict=True):
        assert got.shape == want.shape, f"batch {len(batch)}: wrong output shape"
        assert torch.allclose(got, want, atol=1e-4), (
            f"batch {len(batch)}: the outputs differ from the model's eval-mode outputs")


@pytest.mark.exercise("2.3")
@pytest.mark.points(2)
def test_border_ready_is_frozen_and_saveable(probe, model, bright):
    """2.3 border_ready returns a frozen module that survives save and load"""
    seen = probe.border_ready(bright[:4].numpy(), [bright.numpy()], train=False)
    assert seen["script"], "return a TorchScript module"
    assert seen["parameters"] == 0, (
        "the result still has trainable parameters: freeze it, so the weights become constants")
    if "save_error" in seen:
        pytest.fail(f"the module could not be saved and loaded again: {seen['save_error']}")
    (loaded,) = outputs(seen, "loaded_outputs")
    assert loaded.shape == (len(bright), 2) and torch.allclose(
        loaded, eval_outputs(model, bright), atol=1e-4), (
        "after save and load, the outputs differ from the model's")


@pytest.mark.exercise("2.3")
@pytest.mark.points(1)
def test_border_ready_rejects_bad_examples(probe):
    """2.3 border_ready refuses an example that is not a batch of portraits, with ValueError"""
    message = refusal(lambda: probe.border_ready(np.zeros((3, 64, 64), np.float32), []),
                      "an example of one image (3, 64, 64)",
                      "check the example before tracing: a float (N, 3, H, W) batch or "
                      "ValueError")
    assert message.strip(), "the ValueError needs a message that says what is wrong"
