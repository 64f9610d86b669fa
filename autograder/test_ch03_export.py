"""Chapter 3 — Scripting and torch.export.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). There the probes of
``autograder/probes/ch03.py`` script your lantern, run and save your exported programs (and run
them again in a fresh interpreter without the course library) and export the programs your
check_batch is asked about; only outputs come back. The expected values are computed here,
with the grader's own copy of the model and of the lantern's draft.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vampire_detector.images import MEAN, STD
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch03", "ch03_export")


@pytest.fixture(scope="module")
def portraits() -> torch.Tensor:
    return to_batch(make_portraits(17, seed=31)[0])


@pytest.fixture(scope="module")
def dim_portraits() -> torch.Tensor:
    images = make_portraits(9, seed=32)[0]
    return to_batch((images * np.linspace(0.05, 0.6, 9)[:, None, None, None]).astype(np.uint8))


@pytest.fixture
def model() -> torch.nn.Module:
    return load_model("vampirenet", device=CPU)


def eval_outputs(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(inputs)


# Exercise 3.1 ------------------------------------------------------------------------------

def draft(x: torch.Tensor, target: float | None, max_gain: float) -> torch.Tensor:
    """The grader's own copy of LanternDraft's forward (default target 0.4)."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    target = 0.4 if target is None else target
    pixels = x * std + mean
    brightness = pixels.mean(dim=(1, 2, 3)).numpy()
    gains = np.clip(target / np.maximum(brightness, 1e-3), 1.0, max_gain)
    gains = torch.from_numpy(gains.astype(np.float32)).view(-1, 1, 1, 1)
    return ((pixels * gains).clamp(0.0, 1.0) - mean) / std


def scripted(seen: dict) -> list[torch.Tensor]:
    if "script_error" in seen:
        pytest.fail(f"torch.jit.script refused NightLantern:\n{seen['script_error']}",
                    pytrace=False)
    assert seen.get("script_module"), "torch.jit.script did not give a module"
    return [torch.from_numpy(output) for output in seen["scripted"]]


@pytest.mark.exercise("3.1")
@pytest.mark.points(2)
def test_lantern_scripts(probe, dim_portraits):
    """3.1 NightLantern compiles with torch.jit.script"""
    seen = probe.lantern([dim_portraits.numpy()], None, 4.0)
    assert seen["eager"][0].shape == dim_portraits.shape, "the lantern must keep the batch's shape"
    scripted(seen)


@pytest.mark.exercise("3.1")
@pytest.mark.points(3)
@pytest.mark.parametrize("target", [None, 0.6])
def test_lantern_matches_the_draft(probe, dim_portraits, portraits, target):
    """3.1 scripted NightLantern gives the draft's outputs, with and without a target"""
    batches = (dim_portraits, portraits[:1], portraits)
    seen = probe.lantern([batch.numpy() for batch in batches], target, 3.0)
    eager = [torch.from_numpy(output) for output in seen["eager"]]
    compiled = scripted(seen)
    for batch, mine, theirs in zip(batches, eager, compiled, strict=True):
        want = draft(batch, target, 3.0)
        assert mine.shape == want.shape, f"batch {len(batch)}: wrong output shape"
        assert torch.allclose(mine, want, atol=1e-5), (
            f"batch {len(batch)}, target={target}: the outputs differ from LanternDraft's")
        assert theirs.shape == want.shape and torch.allclose(theirs, want, atol=1e-5), (
            f"batch {len(batch)}, target={target}: the scripted lantern differs from the draft")


# Exercise 3.2 ------------------------------------------------------------------------------

def check_program(seen: dict, model: torch.nn.Module, batches: list[torch.Tensor],
                  key: str = "outputs") -> None:
    assert seen.get("kind") == "ExportedProgram", "return the ExportedProgram of torch.export"
    for batch, got in zip(batches, seen[key], strict=True):
        if isinstance(got, str):
            pytest.fail(f"the program refused a batch of {len(batch)}: {got}", pytrace=False)
        got = torch.from_numpy(got)
        assert got.shape == (len(batch), 2) and torch.allclose(
            got, eval_outputs(model, batch), atol=1e-5), (
            f"batch {len(batch)}: the program's outputs differ from the model's eval outputs")


def export(probe, example: torch.Tensor, batches: list[torch.Tensor], **options) -> dict:
    return probe.export(example.numpy(), [batch.numpy() for batch in batches], **options)


@pytest.mark.exercise("3.2")
@pytest.mark.points(3)
def test_export_accepts_batch_1_and_17(probe, model, portraits):
    """3.2 export_dynamic_batch gives a program that runs batch 1 and batch 17"""
    batches = [portraits[:1], portraits]
    check_program(export(probe, portraits[:4], batches), model, batches)


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
def test_export_from_a_batch_of_one(probe, model, portraits):
    """3.2 export_dynamic_batch works when the example is a single portrait"""
    batches = [portraits[:1], portraits, torch.cat([portraits] * 2)[:32]]
    check_program(export(probe, portraits[:1], batches, max_batch=32), model, batches)


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
def test_export_uses_eval_mode(probe, model, portraits):
    """3.2 export_dynamic_batch records the model in eval mode"""
    batches = [portraits[:3], portraits[:3]]
    check_program(export(probe, portraits[:4], batches, train=True), model, batches)


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
def test_exported_program_travels(probe, model, portraits):
    """3.2 the exported program saves, and runs batch 1 and 17 in a process without the class"""
    batches = [portraits[:1], portraits]
    seen = export(probe, portraits[:4], batches, travel=True)
    assert seen.get("kind") == "ExportedProgram", "return the ExportedProgram of torch.export"
    assert "travel_error" not in seen, (
        f"the saved program failed in a fresh process: {seen.get('travel_error')}")
    check_program(seen, model, batches, key="travelled")


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["one image", "max_batch 1"])
def test_export_rejects_bad_arguments(probe, portraits, case):
    """3.2 export_dynamic_batch refuses a non-batch example and a max_batch below 2"""
    example = portraits[0] if case == "one image" else portraits[:2]
    max_batch = 1 if case == "max_batch 1" else 64
    with pytest.raises(ValueError) as raised:
        export(probe, example, [], max_batch=max_batch)
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"


# Exercise 3.3 ------------------------------------------------------------------------------

@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_check_batch_accepts_what_fits(probe, portraits):
    """3.3 check_batch accepts batches the program can run (exported with batches of 1 to 64)"""
    for batch in (portraits[:1], portraits, torch.cat([portraits] * 4)[:64]):
        assert probe.check_batch(batch.numpy()) is None, (
            f"a batch of {len(batch)} 64x64 portraits fits this program: return None")


BAD_BATCHES = {
    "float64 pixels": lambda p: p.double(),
    "a single image": lambda p: p[0],
    "32x32 images": lambda p: torch.zeros(2, 3, 32, 32),
    "batch above the maximum": lambda p: torch.cat([p] * 17)[:65],
    "a list, not a tensor": lambda p: p.tolist(),
}


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_check_batch_refuses(probe, portraits, case):
    """3.3 check_batch refuses a batch the program cannot take, with ValueError"""
    batch = BAD_BATCHES[case](portraits[:4])
    with pytest.raises(ValueError) as raised:
        probe.check_batch(batch.numpy() if isinstance(batch, torch.Tensor) else batch)
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_check_batch_on_a_static_program(probe, portraits):
    """3.3 check_batch holds a program exported without dynamic shapes to its one batch size"""
    assert probe.check_batch(portraits[4:8].numpy(), dynamic=False) is None, (
        "a batch of the exported size fits: return None")
    with pytest.raises(ValueError):
        probe.check_batch(portraits[:5].numpy(), dynamic=False)
