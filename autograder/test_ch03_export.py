"""Chapter 3 — Scripting and torch.export."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch.export import Dim, ExportedProgram

from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ch03(implementation):
    return implementation("ch03_export")


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

def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    try:
        return torch.jit.script(module)
    except Exception as error:  # TorchScript's errors are long: keep the first lines
        message = "\n".join(str(error).strip().splitlines()[:4])
        pytest.fail(f"torch.jit.script refused NightLantern:\n{message}", pytrace=False)


@pytest.mark.exercise("3.1")
@pytest.mark.points(2)
def test_lantern_scripts(ch03, dim_portraits):
    """3.1 NightLantern compiles with torch.jit.script"""
    lantern = ch03.NightLantern()
    eager = lantern(dim_portraits)
    assert eager.shape == dim_portraits.shape, "the lantern must keep the batch's shape"
    scripted = script(lantern)
    assert isinstance(scripted, torch.jit.ScriptModule), "torch.jit.script did not give a module"


@pytest.mark.exercise("3.1")
@pytest.mark.points(3)
@pytest.mark.parametrize("target", [None, 0.6])
def test_lantern_matches_the_draft(ch03, dim_portraits, portraits, target):
    """3.1 scripted NightLantern gives the draft's outputs, with and without a target"""
    lantern, draft = ch03.NightLantern(max_gain=3.0), ch03.LanternDraft(max_gain=3.0)
    batches = (dim_portraits, portraits[:1], portraits)
    eager = [lantern(batch, target) for batch in batches]
    scripted = script(lantern)
    for batch, mine in zip(batches, eager, strict=True):
        want = draft(batch, target)
        assert mine.shape == want.shape, f"batch {len(batch)}: wrong output shape"
        assert torch.allclose(mine, want, atol=1e-5), (
            f"batch {len(batch)}, target={target}: the outputs differ from LanternDraft's")
        assert torch.allclose(scripted(batch, target), want, atol=1e-5), (
            f"batch {len(batch)}, target={target}: the scripted lantern differs from the draft")


# Exercise 3.2 ------------------------------------------------------------------------------

def check_program(program: object, model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    assert isinstance(program, ExportedProgram), "return the ExportedProgram of torch.export"
    module = program.module()
    for batch in batches:
        try:
            got = module(batch)
        except Exception as error:
            pytest.fail(f"the program refused a batch of {len(batch)}: "
                        f"{str(error).splitlines()[0][:200]}", pytrace=False)
        assert torch.allclose(got, eval_outputs(model, batch), atol=1e-5), (
            f"batch {len(batch)}: the program's outputs differ from the model's eval outputs")


@pytest.mark.exercise("3.2")
@pytest.mark.points(3)
def test_export_accepts_batch_1_and_17(ch03, model, portraits):
    """3.2 export_dynamic_batch gives a program that runs batch 1 and batch 17"""
    program = ch03.export_dynamic_batch(model, portraits[:4])
    check_program(program, model, [portraits[:1], portraits])


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
def test_export_from_a_batch_of_one(ch03, model, portraits):
    """3.2 export_dynamic_batch works when the example is a single portrait"""
    program = ch03.export_dynamic_batch(model, portraits[:1], max_batch=32)
    check_program(program, model, [portraits[:1], portraits, torch.cat([portraits] * 2)[:32]])


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
def test_export_uses_eval_mode(ch03, model, portraits):
    """3.2 export_dynamic_batch records the model in eval mode"""
    model.train()
    program = ch03.export_dynamic_batch(model, portraits[:4])
    model.eval()
    check_program(program, model, [portraits[:3], portraits[:3]])


# Runs in a fresh interpreter where importing vampire_detector fails.
RELOAD = textwrap.dedent("""
    import sys
    sys.modules["vampire_detector"] = None
    import torch
    module = torch.export.load(sys.argv[1]).module()
    inputs = torch.load(sys.argv[2])
    torch.save([module(batch).detach() for batch in inputs], sys.argv[3])
""")


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
def test_exported_program_travels(ch03, model, portraits, tmp_path):
    """3.2 the exported program saves, and runs batch 1 and 17 in a process without the class"""
    program = ch03.export_dynamic_batch(model, portraits[:4])
    assert isinstance(program, ExportedProgram), "return the ExportedProgram of torch.export"
    torch.export.save(program, tmp_path / "vampirenet.pt2")
    torch.save([portraits[:1], portraits], tmp_path / "inputs.pt")
    done = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "vampirenet.pt2"),
                           str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
                          capture_output=True, text=True, timeout=120)
    last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
    assert done.returncode == 0, f"the saved program failed in a fresh process: {last}"
    outputs = torch.load(tmp_path / "out.pt")
    for got, batch in zip(outputs, (portraits[:1], portraits), strict=True):
        assert torch.allclose(got, eval_outputs(model, batch), atol=1e-5), (
            f"batch {len(batch)}: the reloaded program's outputs differ from the model's")


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("case", ["one image", "max_batch 1"])
def test_export_rejects_bad_arguments(ch03, model, portraits, case):
    """3.2 export_dynamic_batch refuses a non-batch example and a max_batch below 2"""
    example = portraits[0] if case == "one image" else portraits[:2]
    max_batch = 1 if case == "max_batch 1" else 64
    with pytest.raises(ValueError) as raised:
        ch03.export_dynamic_batch(model, example, max_batch=max_batch)
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"


# Exercise 3.3 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def program() -> ExportedProgram:
    model = load_model("vampirenet", device=CPU)
    example = to_batch(make_portraits(4, seed=33)[0])
    return torch.export.export(model, (example,),
                               dynamic_shapes=({0: Dim("batch", min=1, max=64)},))


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_check_batch_accepts_what_fits(ch03, program, portraits):
    """3.3 check_batch accepts batches the program can run"""
    for batch in (portraits[:1], portraits, torch.cat([portraits] * 4)[:64]):
        assert ch03.check_batch(program, batch) is None, (
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
def test_check_batch_refuses(ch03, program, portraits, case):
    """3.3 check_batch refuses a batch the program cannot take, with ValueError"""
    with pytest.raises(ValueError) as raised:
        ch03.check_batch(program, BAD_BATCHES[case](portraits[:4]))
    assert str(raised.value).strip(), "the ValueError needs a message that says what is wrong"


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_check_batch_on_a_static_program(ch03, portraits):
    """3.3 check_batch holds a program exported without dynamic shapes to its one batch size"""
    model = load_model("vampirenet", device=CPU)
    static = torch.export.export(model, (portraits[:4],))
    assert ch03.check_batch(static, portraits[4:8]) is None, (
        "a batch of the exported size fits: return None")
    with pytest.raises(ValueError):
        ch03.check_batch(static, portraits[:5])
