"""Chapter 2 — Tracing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from vampire_detector.gate import DraftGarlicGate, GarlicGate
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ch02(implementation):
    return implementation("ch02_tracing")


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


# Runs in a fresh interpreter where importing vampire_detector fails, as at the border.
LOADER = textwrap.dedent("""
    import sys
    sys.modules["vampire_detector"] = None  # the class must not be needed
    import torch
    module = torch.jit.load(sys.argv[1])
    inputs = torch.load(sys.argv[2])
    with torch.no_grad():
        outputs = [module(batch) for batch in inputs]
    torch.save({"training": module.training, "outputs": outputs}, sys.argv[3])
""")


def load_elsewhere(path: Path, inputs: list[torch.Tensor], tmp_path: Path) -> dict:
    """Load a saved TorchScript file in a subprocess without the class and run ``inputs``."""
    torch.save(inputs, tmp_path / "inputs.pt")
    done = subprocess.run([sys.executable, "-c", LOADER, str(path), str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt")], capture_output=True, text=True,
                          timeout=120)
    last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
    assert done.returncode == 0, (
        f"a fresh Python process without vampire_detector could not load and run the file: {last}")
    return torch.load(tmp_path / "outputs.pt")


# Exercise 2.1 ------------------------------------------------------------------------------

@pytest.mark.exercise("2.1")
@pytest.mark.points(3)
def test_trace_loads_without_the_class(ch02, model, bright, tmp_path):
    """2.1 trace_and_save writes a file that runs, in eval mode, where the class is unknown"""
    expected = [eval_outputs(model, bright[:1]), eval_outputs(model, bright)]
    model.train()  # Renfield hands over the model straight from training
    path = ch02.trace_and_save(model, bright[:4], tmp_path / "vampirenet.pt")
    assert Path(path).exists(), "return the path of the file you saved"
    result = load_elsewhere(Path(path), [bright[:1], bright], tmp_path)
    assert not result["training"], "the loaded module is in training mode: trace it in eval mode"
    for got, want, size in zip(result["outputs"], expected, (1, 17), strict=True):
        assert got.shape == want.shape, f"batch {size}: the loaded trace gave the wrong shape"
        assert torch.allclose(got, want, atol=1e-5), (
            f"batch {size}: the loaded trace's outputs differ from the model's eval-mode outputs")


@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_trace_leaves_the_model_mode(ch02, model, bright, tmp_path, mode):
    """2.1 trace_and_save leaves the caller's model in the mode it was in"""
    model.train(mode == "train")
    ch02.trace_and_save(model, bright[:2], tmp_path / "vampirenet.pt")
    assert model.training == (mode == "train"), (
        f"the model was in {mode} mode before the call and not after it: restore its mode")


@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["one image", "uint8 pixels"])
def test_trace_rejects_bad_examples(ch02, model, bright, tmp_path, case):
    """2.1 trace_and_save refuses an example that is not a float batch, with ValueError"""
    example = {"one image": bright[0], "uint8 pixels": torch.zeros(2, 3, 64, 64,
                                                                    dtype=torch.uint8)}[case]
    with pytest.raises(ValueError) as raised:
        ch02.trace_and_save(model, example, tmp_path / "vampirenet.pt")
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"


# Exercise 2.2 ------------------------------------------------------------------------------

def traced(module: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    with torch.no_grad():
        return torch.jit.trace(module.eval(), example, check_trace=False)


@pytest.mark.exercise("2.2")
@pytest.mark.points(3)
def test_finds_a_baked_branch(ch02, model, bright, dark):
    """2.2 find_disagreements finds the portraits a gate traced on a dark portrait gets wrong"""
    gate = GarlicGate(model).eval()
    trace = traced(gate, dark[:1])  # the branch "refuse everyone" is now baked in
    candidates = torch.cat([dark[:2], bright[:3], dark[2:4], bright[3:5]])
    found = ch02.find_disagreements(gate, trace, candidates)
    assert isinstance(found, list), "return a list of indices"
    assert sorted(found) == found, "return the indices in ascending order"
    assert [int(index) for index in found] == [2, 3, 4, 7, 8], (
        "these are not the candidates on which the trace and the eager gate disagree: run both "
        "on each candidate alone and compare")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_no_false_alarms(ch02, model, bright):
    """2.2 find_disagreements reports nothing for a faithful trace"""
    trace = traced(model, bright[:4])
    found = ch02.find_disagreements(model, trace, bright[:8], atol=1e-4)
    assert list(found) == [], "a faithful trace of VampireNet was reported to disagree"


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_counts_a_trace_that_fails(ch02, model, bright):
    """2.2 find_disagreements counts the candidates on which the trace raises an error"""
    draft = DraftGarlicGate(model).eval()
    trace = traced(draft, bright[:2])  # the loop over two portraits is unrolled
    found = ch02.find_disagreements(draft, trace, bright[:3])
    assert [int(index) for index in found] == [0, 1, 2], (
        "a trace that raises on a candidate disagrees with the model there: catch the error")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["no candidates", "negative atol"])
def test_disagreements_reject_bad_arguments(ch02, model, bright, case):
    """2.2 find_disagreements refuses empty candidates and a negative tolerance"""
    trace = traced(model, bright[:2])
    candidates = bright[:0] if case == "no candidates" else bright[:2]
    atol = -1e-3 if case == "negative atol" else 1e-5
    with pytest.raises(ValueError) as raised:
        ch02.find_disagreements(model, trace, candidates, atol=atol)
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"


# Exercise 2.3 ------------------------------------------------------------------------------

@pytest.mark.exercise("2.3")
@pytest.mark.points(2)
def test_border_ready_matches_the_model(ch02, model, bright):
    """2.3 border_ready gives the model's eval-mode outputs at batch 1 and 17"""
    expected = [eval_outputs(model, bright[:1]), eval_outputs(model, bright)]
    model.train()
    ready = ch02.border_ready(model, bright[:4])
    assert model.training, "the model was in train mode before the call: restore its mode"
    with torch.no_grad():
        for batch, want in zip((bright[:1], bright), expected, strict=True):
            got = ready(batch)
            assert got.shape == want.shape, f"batch {len(batch)}: wrong output shape"
            assert torch.allclose(got, want, atol=1e-4), (
                f"batch {len(batch)}: the outputs differ from the model's eval-mode outputs")


@pytest.mark.exercise("2.3")
@pytest.mark.points(2)
def test_border_ready_is_frozen_and_saveable(ch02, model, bright, tmp_path):
    """2.3 border_ready returns a frozen module that survives save and load"""
    ready = ch02.border_ready(model, bright[:4])
    assert isinstance(ready, torch.jit.ScriptModule), "return a TorchScript module"
    assert not list(ready.parameters()), (
        "the result still has trainable parameters: freeze it, so the weights become constants")
    try:
        torch.jit.save(ready, str(tmp_path / "ready.pt"))
        loaded = torch.jit.load(str(tmp_path / "ready.pt"))
    except RuntimeError as error:
        pytest.fail(f"the module could not be saved and loaded again: {str(error)[:200]}")
    with torch.no_grad():
        assert torch.allclose(loaded(bright), eval_outputs(model, bright), atol=1e-4), (
            "after save and load, the outputs differ from the model's")


@pytest.mark.exercise("2.3")
@pytest.mark.points(1)
def test_border_ready_rejects_bad_examples(ch02, model):
    """2.3 border_ready refuses an example that is not a batch of portraits, with ValueError"""
    with pytest.raises(ValueError) as raised:
        ch02.border_ready(model, torch.zeros(3, 64, 64))
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"
