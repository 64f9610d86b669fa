"""Chapter 11 — To the edge and into the browser.

Sealed: your code runs in a sandboxed process (the ``submission`` fixture). The probes of
``autograder/probes/ch11.py`` build the grader's models there and hand them to your functions;
the ``.pte`` files you write come back through the sandbox's exchange folder and are read here:
run by ``executorch.runtime`` against the grader's own eager copy of each model, and opened to
see which operators the XNNPACK delegate took and which run on the portable kernels. The
expected operator counts come from the grader's own lowering of the same models.

Wrong answers these tests catch, each with feedback that names the problem:

- 11.1 ``no-partitioner``: lowered without the XNNPACK partitioner, so no delegate runs anything.
- 11.1 ``counts-the-delegate-call``: the call into the delegate and ``getitem`` counted as
  portable operators.
- 11.1 ``merges-the-subgraphs``: one count for all delegated subgraphs (the library's
  ``delegation``), though a portable operator splits the graph in two.
- 11.1 ``parity-on-a-constant-input``: the difference measured on one input of ones, not on the
  inputs given.
- 11.1 ``left-in-train-mode``: the model exported as it was handed over, in training mode.
- 11.1 ``copies-the-library``: ``vampire_detector.edge`` imported instead of written.
- 11.2 ``checks-only-the-first-node``: only the first operator outside the delegate is named.
- 11.2 ``refusal-without-the-operator``: a refusal that does not say which operators.
- 11.2 ``refusal-without-the-module``: operators named without the layer they come from (the
  library's ``require_full_delegation``).
- 11.2 ``writes-before-checking``: the ``.pte`` file written even when the model is refused.
- 11.2 ``getitem-counts-as-portable``: tuple unpacking counted as an operator, so a model that
  XNNPACK runs whole is refused.
- 11.2 ``copies-the-library``: ``vampire_detector.edge`` imported instead of written.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
from executorch.exir._serialize._program import deserialize_pte_binary
from executorch.runtime import Runtime

from autograder.probes.ch11 import SMALL, build
from autograder.sandbox import SandboxError
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch

ATOL = 1e-4  # float32 kernels may sum in another order; more than this is a real bug
BRIGHT = 1000.0  # one input of the parity set is a portrait this many times brighter
MAX_PTE_BYTES = 16 * 2**20  # VampireNet's program is about 100 KB
TRAINING_BATCH_NORM = "_native_batch_norm_legit_functional"  # batch norm exported in train mode


class Lowered(NamedTuple):
    """What the student's lower_with_report said, and the file it wrote, received here."""

    report: dict
    path: Path


class Pte(NamedTuple):
    """What the grader reads in a .pte file: the kernels it calls and its delegate calls."""

    portable: list[str]  # the portable kernels the program calls, e.g. "aten::cumsum.out"
    delegates: list[str]  # the backend of each delegate, e.g. "XnnpackBackend"
    steps: list[str]  # the instructions in order: "delegate" or the kernel's name


# The grader's own copies: models, inputs, expected counts -----------------------------------

@functools.cache
def eager(name: str) -> torch.nn.Module:
    return build(name).eval()


def portraits(n: int, seed: int) -> np.ndarray:
    return to_batch(make_portraits(n, seed=seed)[0]).numpy()


def parity_inputs() -> np.ndarray:
    """Five portraits and, fifth, one much brighter: its difference is the largest by far."""
    inputs = portraits(6, seed=4)
    inputs[4] *= BRIGHT
    return inputs


def small_inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, SMALL, SMALL)).astype(np.float32)


def operator_name(node: torch.fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target))


@functools.cache
def expected_counts(name: str, side: int) -> tuple[list[dict[str, int]], dict[str, int]]:
    """The grader's own lowering of ``name``: operators per delegated subgraph, and outside."""
    program = torch.export.export(build(name).eval(), (torch.zeros(1, 3, side, side),))
    module = to_edge_transform_and_lower(
        program, partitioner=[XnnpackPartitioner()]).exported_program().graph_module

    def operators(graph: torch.fx.Graph) -> Counter:
        calls = (n for n in graph.nodes if n.op == "call_function")
        return Counter(operator_name(n) for n in calls
                       if operator_name(n) not in ("getitem", "executorch_call_delegate"))

    lowered = [getattr(module, n.target) for n in module.graph.nodes
               if n.op == "get_attr" and str(n.target).startswith("lowered_module")]
    return ([dict(operators(part.original_module.graph_module.graph)) for part in lowered],
            dict(operators(module.graph)))


def read_pte(path: Path) -> Pte:
    """The kernels and delegates of the program in ``path``, read from the file itself."""
    assert path.stat().st_size <= MAX_PTE_BYTES, "the .pte file you wrote is far too large"
    try:
        plan = deserialize_pte_binary(path.read_bytes()).program.execution_plan[0]
    except Exception as error:  # a file that is no ExecuTorch program
        pytest.fail(f"the file you wrote is not an ExecuTorch program: {error}", pytrace=False)
    kernels = [f"{op.name}.{op.overload}" for op in plan.operators]
    steps = []
    for instruction in plan.chains[0].instructions:
        kind = type(instruction.instr_args).__name__
        if kind == "DelegateCall":
            steps.append("delegate")
        elif kind == "KernelCall":
            steps.append(kernels[instruction.instr_args.op_index])
    return Pte(kernels, [delegate.id for delegate in plan.delegates], steps)


def run_pte(path: Path, inputs: np.ndarray) -> np.ndarray:
    """The program's outputs for ``inputs``, one at a time, as the grader's runtime gives them."""
    try:
        method = Runtime.get().load_program(path).load_method("forward")
        return np.concatenate([method.execute([torch.from_numpy(inputs[i:i + 1])])[0].numpy()
                               for i in range(len(inputs))])
    except Exception as error:  # the runtime raises RuntimeError and friends
        pytest.fail(f"executorch.runtime could not run the file you wrote on a batch of one "
                    f"input: {error}", pytrace=False)


def eager_outputs(name: str, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return eager(name)(torch.from_numpy(inputs)).numpy()


# Fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch11", "ch11_edge")


@pytest.fixture(scope="module")
def exchange(sandbox) -> Path:
    return Path(tempfile.mkdtemp(prefix="ch11-", dir=sandbox.exchange))


def lowered(probe, sandbox, folder: Path, name: str, inputs: np.ndarray,
            train: bool = False) -> Lowered:
    """The student's lower_with_report on the grader's model ``name``, and its file."""
    folder.mkdir(exist_ok=True)
    report = probe.lower(name, str(folder / f"{name}.pte"), inputs, train)
    assert report["kind"] == "EdgeReport", "return an EdgeReport"
    try:
        path = sandbox.received(report["path"])
    except SandboxError:
        pytest.fail("no .pte file was written at the path your report gives", pytrace=False)
    return Lowered(report, path)


@pytest.fixture(scope="module")
def vampirenet(probe, sandbox, exchange) -> Lowered:
    """VampireNet lowered once by the student's code, for the tests that look at it."""
    return lowered(probe, sandbox, exchange / "vampirenet", "vampirenet", parity_inputs())


@pytest.fixture(scope="module")
def smeared(probe, sandbox, exchange) -> Lowered:
    """The small model with a running sum, handed over in training mode, lowered once."""
    try:
        return lowered(probe, sandbox, exchange / "smeared", "smeared", small_inputs(3, seed=5),
                       train=True)
    except Exception as error:
        if TRAINING_BATCH_NORM not in str(error):
            raise
        pytest.fail("lower_with_report failed on a model handed over in training mode: its "
                    "batch norm was exported as it trains, which ExecuTorch cannot lower. A "
                    "phone runs inference: export the model in eval mode", pytrace=False)


@pytest.fixture(scope="module")
def refusal(probe, exchange) -> tuple[dict, Path]:
    """What export_fully_delegated did with a model that XNNPACK cannot run whole."""
    path = exchange / "refused" / "smeared.pte"
    path.parent.mkdir()
    return probe.export_checked("smeared-label", str(path), SMALL), path


# Exercise 11.1 ----------------------------------------------------------------------------

@pytest.mark.exercise("11.1")
@pytest.mark.points(3)
def test_the_pte_computes_what_eager_computes(vampirenet):
    """11.1 the .pte file, run by executorch.runtime, matches the eager model within 1e-4"""
    inputs = portraits(8, seed=21)
    error = float(np.abs(run_pte(vampirenet.path, inputs) - eager_outputs("vampirenet",
                                                                          inputs)).max())
    assert error <= ATOL, (
        f"on portraits, the .pte file you wrote and the eager model differ by up to {error:.2g} "
        f"(allowed: {ATOL:g}): export the model you were given, in eval mode, for a batch of "
        "one shaped like inputs[:1]")


@pytest.mark.exercise("11.1")
@pytest.mark.points(2)
def test_the_xnnpack_delegate_takes_the_convolutions(vampirenet):
    """11.1 in the .pte file, XNNPACK runs VampireNet whole: no convolution on portable kernels"""
    pte = read_pte(vampirenet.path)
    assert "XnnpackBackend" in pte.delegates, (
        "the program calls no XNNPACK delegate: lower it with to_edge_transform_and_lower and "
        "partitioner=[XnnpackPartitioner()]")
    convolutions = [kernel for kernel in pte.portable if "convolution" in kernel]
    assert not convolutions, (
        "convolutions run on ExecuTorch's portable kernels, not in the XNNPACK delegate")
    assert pte.steps == ["delegate"], (
        f"XNNPACK takes the whole of VampireNet, but your program also calls these portable "
        f"kernels: {', '.join(pte.portable)}")


@pytest.mark.exercise("11.1")
@pytest.mark.points(2)
def test_the_report_counts_a_whole_delegated_graph(vampirenet):
    """11.1 the report of VampireNet: one delegated subgraph with its operators, none portable"""
    report = vampirenet.report
    assert not report["portable"], (
        f"XNNPACK runs every operator of VampireNet, but your report lists portable ones: "
        f"{', '.join(report['portable'])}. The call into the delegate and getitem compute "
        "nothing: do not count them")
    assert len(report["partitions"]) == 1, (
        f"VampireNet is delegated as one subgraph; your report lists "
        f"{len(report['partitions'])}")
    (partition,) = report["partitions"]
    assert "getitem" not in partition and "executorch_call_delegate" not in partition, (
        "getitem only unpacks a tuple and computes nothing: do not count it")
    convolutions = sum(isinstance(m, torch.nn.Conv2d) for m in eager("vampirenet").modules())
    assert partition.get("aten.convolution.default") == convolutions, (
        "the delegated subgraph's count of aten.convolution.default is not the number of "
        "convolutions in VampireNet: count each call_function node of the graph the delegate "
        "took, named with operator_name")


@pytest.mark.exercise("11.1")
@pytest.mark.points(2)
def test_the_report_counts_a_split_graph(smeared):
    """11.1 a portable running sum between convolutions: two subgraphs, in order, and the sum"""
    partitions, portable = expected_counts("smeared", SMALL)
    report = smeared.report
    assert report["portable"] == portable, (
        "the portable operators are wrong: count each operator call of the lowered program "
        "that lies outside the delegated subgraphs (the running sum here), before "
        "to_executorch, named with operator_name")
    assert len(report["partitions"]) == read_pte(smeared.path).steps.count("delegate"), (
        "a running sum between two convolutions splits the delegated graph in two: report one "
        "entry per delegated subgraph")
    assert report["partitions"] == partitions, (
        "the operator counts per delegated subgraph are wrong: one entry per subgraph, in the "
        "order the program calls them, counting each call_function node but getitem")


@pytest.mark.exercise("11.1")
@pytest.mark.points(2)
def test_max_abs_diff_is_measured_over_every_input(vampirenet):
    """11.1 max_abs_diff is the largest difference between eager and the .pte over every input"""
    inputs = parity_inputs()
    measured = float(np.abs(run_pte(vampirenet.path, inputs)
                            - eager_outputs("vampirenet", inputs)).max())
    reported = vampirenet.report["max_abs_diff"]
    assert np.isfinite(reported) and reported >= 0, "max_abs_diff must be a number, 0 or more"
    assert measured / 4 <= reported <= 4 * measured + 1e-6, (
        "max_abs_diff is not the largest difference between the eager model and your .pte file "
        "over every input you were given (one of them is much brighter than a portrait): run "
        "each input through the file you wrote and through the model, and keep the worst")


@pytest.mark.exercise("11.1")
@pytest.mark.points(1)
def test_a_model_handed_over_in_train_mode(smeared):
    """11.1 a model handed over in training mode is lowered for inference"""
    inputs = small_inputs(4, seed=7)
    error = float(np.abs(run_pte(smeared.path, inputs) - eager_outputs("smeared", inputs)).max())
    assert error <= ATOL, (
        "a model handed over in training mode was not lowered for inference: put it in eval "
        "mode before exporting")


# Exercise 11.2 ----------------------------------------------------------------------------

@pytest.mark.exercise("11.2")
@pytest.mark.points(2)
def test_a_fully_delegated_model_is_written(probe, sandbox, exchange):
    """11.2 export_fully_delegated writes VampireNet, which XNNPACK runs whole, and returns it"""
    folder = exchange / "accepted"
    folder.mkdir()
    seen = probe.export_checked("vampirenet", str(folder / "vampirenet.pte"), 64)
    assert seen["raised"] is None, (
        f"VampireNet is fully delegated, yet it was refused ({seen['raised']}: "
        f"{seen.get('message', '')[:300]}): count only operator calls outside the delegated "
        "subgraphs, not getitem or the call into the delegate")
    assert seen["is_path"], "return the path of the .pte file as a pathlib.Path"
    try:
        path = sandbox.received(seen["path"])
    except SandboxError:
        pytest.fail("no .pte file was written at the path you returned", pytrace=False)
    assert read_pte(path).steps == ["delegate"], (
        "the program you wrote does not run VampireNet in one XNNPACK delegate call")
    inputs = portraits(4, seed=8)
    error = float(np.abs(run_pte(path, inputs) - eager_outputs("vampirenet", inputs)).max())
    assert error <= ATOL, "the .pte file you wrote does not compute what the eager model does"


def names(message: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", message) is not None


@pytest.mark.exercise("11.2")
@pytest.mark.points(2)
def test_the_refusal_names_every_portable_operator(refusal):
    """11.2 a model with a running sum and an argmax is refused with both operators named"""
    seen, _ = refusal
    assert seen["raised"] is not None, (
        "a model with operators XNNPACK cannot take was exported anyway: refuse it")
    assert seen["is_value_error"], (
        f"refuse with PortableOperatorsError (a ValueError), not {seen['raised']}")
    missing = [op for op in ("cumsum", "argmax") if op not in seen["message"]]
    assert not missing, (
        "the refusal must name every operator left to the portable kernels (as operator_name "
        f"names it), and this one names {2 - len(missing)} of the 2")


@pytest.mark.exercise("11.2")
@pytest.mark.points(1)
def test_the_refusal_names_the_module_of_each_operator(refusal):
    """11.2 the refusal says which submodule each portable operator comes from"""
    seen, _ = refusal
    assert seen["raised"] is not None, "the model with portable operators was not refused"
    missing = [where for where in ("smear", "verdict") if not names(seen["message"], where)]
    assert not missing, (
        "the refusal must say which submodule each operator comes from, by its qualified name "
        "in model.named_modules() (node.meta['nn_module_stack'] holds it): "
        f"{len(missing)} of the 2 are missing")


@pytest.mark.exercise("11.2")
@pytest.mark.points(1)
def test_nothing_is_written_for_a_refused_model(refusal):
    """11.2 a refused model leaves no .pte file behind"""
    seen, path = refusal
    assert seen["raised"] is not None, "the model with portable operators was not refused"
    assert not path.exists(), (
        "a .pte file was written for the model you refused: check the delegation first, and "
        "write the file only for a model that passes")
