"""Chapter 3 — Scripting and torch.export.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). There the probes of
``autograder/probes/ch03.py`` script your lantern, run and save your exported programs (and run
them again in a fresh interpreter without the course library) and export the programs your
check_batch is asked about; only outputs come back. The expected values are computed here,
with the grader's own copy of the model and of the lantern's draft.

Wrong answers these tests catch, each with feedback that names the problem:

- 3.1 ``keeps-numpy``: the draft's NumPy calls left in, which ``torch.jit.script`` refuses.
- 3.1 ``one-gain-for-the-batch``: the brightness of the whole batch, not of each portrait.
- 3.1 ``gain-below-one``: the gain clipped above only, so bright portraits are darkened.
- 3.1 ``no-unit-clamp``: brightened pixels not clamped to [0, 1].
- 3.1 ``not-normalised-again``: pixels returned in [0, 1] instead of normalised.
- 3.1 ``target-ignored``: the lantern's own target used whatever the caller asks.
- 3.2 ``static-batch``: exported without a dynamic batch dimension.
- 3.2 ``specialises-on-one``: a single-portrait example exported as it is (batch fixed at 1).
- 3.2 ``forgets-eval``: exported in training mode.
- 3.2 ``max-batch-ignored``: a batch range without the ``max_batch`` bound.
- 3.2 ``no-argument-check``: a non-batch example or ``max_batch`` below 2 accepted.
- 3.3 ``ignores-dtype``: float64 pixels let through.
- 3.3 ``range-ignored``: the dynamic batch size not checked against the program's range.
- 3.3 ``exclusive-bounds``: a batch exactly at the range's upper end refused.
- 3.3 ``static-size-ignored``: a static dimension of another size let through.
- 3.3 ``asserts-instead-of-raising``: ``assert`` statements, which raise ``AssertionError``
  (and vanish under ``python -O``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.checks import refusal
from autograder.sandbox import SandboxError
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


@pytest.fixture(scope="module")
def bright_portraits() -> torch.Tensor:
    images = make_portraits(5, seed=34)[0].astype(np.int16) + 100  # brighter than any target
    return to_batch(np.clip(images, 0, 255).astype(np.uint8))


def eval_outputs(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(inputs)


# Exercise 3.1 ------------------------------------------------------------------------------

def draft(x: torch.Tensor, target: float | None, max_gain: float, *, each: bool = True,
          floor: float | None = 1.0, unit: bool = True, normalise: bool = True) -> torch.Tensor:
    """The grader's own copy of LanternDraft's forward (default target 0.4); the options make
    the classic slips: one brightness for the whole batch (not ``each``), no lower bound on
    the gain (``floor`` None), no clamp to [0, 1] (not ``unit``), no normalisation at the end."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    target = 0.4 if target is None else target
    pixels = x * std + mean
    brightness = (pixels.mean(dim=(1, 2, 3)) if each
                  else pixels.mean().expand(len(x))).numpy()
    gains = np.clip(target / np.maximum(brightness, 1e-3), floor, max_gain)
    gains = torch.from_numpy(gains.astype(np.float32)).view(-1, 1, 1, 1)
    brighter = (pixels * gains).clamp(0.0, 1.0) if unit else pixels * gains
    return (brighter - mean) / std if normalise else brighter


SLIPS = {
    "each portrait needs its own gain, from its own brightness": {"each": False},
    "the gain must be at least 1: the lantern never darkens a portrait": {"floor": None},
    "clamp the brightened pixels to [0, 1]": {"unit": False},
    "normalise the brightened pixels again, as the draft does": {"normalise": False},
}


def lantern_slip(got: torch.Tensor, batch: torch.Tensor, target: float | None,
                 max_gain: float) -> str:
    """What the lantern got wrong, when its output is one of the classic slips'."""
    slips = {slip: draft(batch, target, max_gain, **options) for slip, options in SLIPS.items()}
    if target is not None:
        slips["use the target the caller passes, when there is one"] = draft(batch, None,
                                                                              max_gain)
    for slip, wrong in slips.items():
        if got.shape == wrong.shape and torch.allclose(got, wrong, atol=1e-5):
            return f": {slip}"
    return ""


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
def test_lantern_matches_the_draft(probe, dim_portraits, portraits, bright_portraits, target):
    """3.1 scripted NightLantern gives the draft's outputs, with and without a target"""
    batches = {"9 dim portraits": dim_portraits, "one portrait": portraits[:1],
               "17 portraits": portraits, "5 bright portraits": bright_portraits}
    seen = probe.lantern([batch.numpy() for batch in batches.values()], target, 3.0)
    eager = [torch.from_numpy(output) for output in seen["eager"]]
    compiled = scripted(seen)
    for (name, batch), mine, theirs in zip(batches.items(), eager, compiled, strict=True):
        want = draft(batch, target, 3.0)
        assert mine.shape == want.shape, f"{name}: wrong output shape"
        assert torch.allclose(mine, want, atol=1e-5), (
            f"{name}, target={target}: the outputs differ from LanternDraft's"
            + lantern_slip(mine, batch, target, 3.0))
        assert theirs.shape == want.shape and torch.allclose(theirs, want, atol=1e-5), (
            f"{name}, target={target}: the scripted lantern differs from the draft")



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
    try:
        seen = export(probe, portraits[:1], batches, max_batch=32)
    except (NotImplementedError, SandboxError):
        raise
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        pytest.fail(f"exporting from a single portrait raised {type(error).__name__} ({first}): "
                    "torch.export specialises a dimension whose example size is 1, so give it "
                    "an example batch of at least 2", pytrace=False)
    check_program(seen, model, batches)


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
def test_export_refuses_batches_above_the_maximum(probe, portraits):
    """3.2 export_dynamic_batch's program refuses a batch larger than max_batch"""
    seen = export(probe, portraits[:4], [torch.cat([portraits] * 2)[:33]], max_batch=32)
    assert seen.get("kind") == "ExportedProgram", "return the ExportedProgram of torch.export"
    assert isinstance(seen["outputs"][0], str), (
        "a batch of 33 ran on a program exported with max_batch=32: give the batch dimension "
        "the range 1 to max_batch, so that the program refuses larger batches")


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
    what = "an example of one image (3, 64, 64)" if case == "one image" else "max_batch=1"
    message = refusal(lambda: export(probe, example, [], max_batch=max_batch), what,
                      "check the arguments before exporting: a float (N, 3, H, W) example and "
                      "a max_batch of at least 2, or ValueError")
    assert message.strip(), "the ValueError needs a message that says what is wrong"


# Exercise 3.3 ------------------------------------------------------------------------------

@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_check_batch_accepts_what_fits(probe, portraits):
    """3.3 check_batch accepts batches the program can run (exported with batches of 1 to 64)"""
    for batch in (portraits[:1], portraits, torch.cat([portraits] * 4)[:64]):
        why = (f"a batch of {len(batch)} 64x64 portraits fits this program (1 to 64, both "
               "included): return None")
        try:
            answer = probe.check_batch(batch.numpy())
        except (NotImplementedError, SandboxError):
            raise
        except Exception as error:
            pytest.fail(f"check_batch raised {type(error).__name__} ({str(error)[:200]}): "
                        f"{why}", pytrace=False)
        assert answer is None, why


BAD_BATCHES = {
    "float64 pixels": lambda p: p.double(),
    "a single image": lambda p: p[0],
    "32x32 images": lambda p: torch.zeros(2, 3, 32, 32),
    "batch above the maximum": lambda p: torch.cat([p] * 17)[:65],
    "a list, not a tensor": lambda p: p.tolist(),
}
WHY = {
    "float64 pixels": "the program takes the dtype it was exported with (float32)",
    "a single image": "the program takes 4 dimensions, (N, 3, H, W)",
    "32x32 images": "a static dimension must have exactly the exported size",
    "batch above the maximum": "a dynamic dimension must lie in the range the program allows "
                               "(range_constraints)",
    "a list, not a tensor": "the program takes a tensor",
}


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_check_batch_refuses(probe, portraits, case):
    """3.3 check_batch refuses a batch the program cannot take, with ValueError"""
    batch = BAD_BATCHES[case](portraits[:4])
    given = batch.numpy() if isinstance(batch, torch.Tensor) else batch
    message = refusal(lambda: probe.check_batch(given), f"a batch of {case}",
                      f"{WHY[case]}: raise ValueError")
    assert message.strip(), "the ValueError needs a message that says what is wrong"


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_check_batch_on_a_static_program(probe, portraits):
    """3.3 check_batch holds a program exported without dynamic shapes to its one batch size"""
    assert probe.check_batch(portraits[4:8].numpy(), dynamic=False) is None, (
        "a batch of the exported size fits: return None")
    refusal(lambda: probe.check_batch(portraits[:5].numpy(), dynamic=False),
            "a batch of 5 for a program exported (static) with a batch of 4",
            "a static dimension must have exactly the exported size: raise ValueError")
