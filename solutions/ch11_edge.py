"""Chapter 11 exercises: to the edge and into the browser.

Fill in the functions below, then grade them with

    pytest autograder/test_ch11_edge.py

Write them with ExecuTorch itself: while they are graded, ``vampire_detector.edge`` (the
chapter's own helpers) cannot be imported from this file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
from executorch.runtime import Runtime
from torch import nn

DELEGATE_CALL = "executorch_call_delegate"


def operator_name(node: torch.fx.Node) -> str:
    """The name the exercises give an operator node, e.g. ``aten.convolution.default``."""
    return getattr(node.target, "__name__", str(node.target))


@dataclass(frozen=True)
class EdgeReport:
    """What lowering did to a model, and how faithfully the ``.pte`` file computes it."""

    path: Path  # the .pte file that was written
    partitions: list[dict[str, int]]  # one per delegated subgraph, in the order they run
    portable: dict[str, int]  # operators left to ExecuTorch's portable kernels
    max_abs_diff: float  # the largest |pte - eager| over every output of every input

    @property
    def delegated(self) -> int:
        """How many operators the delegate runs, over all its subgraphs."""
        return sum(sum(partition.values()) for partition in self.partitions)


def lower_with_report(model: nn.Module, inputs: torch.Tensor, path: str | Path) -> EdgeReport:
    """Exercise 11.1: lower ``model`` to a ``.pte`` file with XNNPACK, and report on it.

    Export the model's inference behaviour with ``torch.export`` for a batch of one, shaped like
    ``inputs[:1]``; lower it with ``to_edge_transform_and_lower`` and the XNNPACK partitioner;
    write the program to ``path``. Then report:

    - ``partitions``: for each delegated subgraph, in the order the program calls them, how
      many times each operator occurs inside it;
    - ``portable``: how many times each operator occurs outside any delegated subgraph;
    - ``max_abs_diff``: the largest absolute difference between the eager model's outputs and
      those of the file you wrote, run by ``executorch.runtime`` one input at a time, over
      every input in ``inputs``.

    Count operator calls only (``call_function`` nodes), named with ``operator_name``, in the
    lowered program before ``to_executorch`` (which rewrites it for memory planning); unpacking
    a tuple (``getitem``) and the call into the delegate compute nothing and are not counted.
    """
    # BEGIN SOLUTION
    # Hint: a delegated subgraph is a get_attr node whose target starts with
    # "lowered_module"; getattr(graph_module, node.target).original_module.graph_module
    # is the graph the delegate took.
    # Hint: a .pte is judged by the file, not by the program in memory: load the file you wrote.
    def computes(node: torch.fx.Node) -> bool:
        return node.op == "call_function" and operator_name(node) not in ("getitem",
                                                                          DELEGATE_CALL)

    model.eval()
    program = torch.export.export(model, (inputs[:1].contiguous(),))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    module = edge.exported_program().graph_module
    partitions, portable = [], Counter()
    for node in module.graph.nodes:
        if node.op == "get_attr" and str(node.target).startswith("lowered_module"):
            inner = getattr(module, node.target).original_module.graph_module
            partitions.append(dict(Counter(
                operator_name(n) for n in inner.graph.nodes if computes(n))))
        elif computes(node):
            portable[operator_name(node)] += 1
    path = Path(path)
    path.write_bytes(edge.to_executorch().buffer)

    method = Runtime.get().load_program(path).load_method("forward")
    worst = 0.0
    for i in range(len(inputs)):
        one = inputs[i:i + 1].contiguous()
        with torch.inference_mode():
            expected = model(one)
        (actual,) = method.execute([one])
        worst = max(worst, float((actual - expected).abs().max()))
    return EdgeReport(path, partitions, dict(portable), worst)
    # END SOLUTION


class PortableOperatorsError(ValueError):
    """A program that would run some of its operators on ExecuTorch's portable kernels."""


def export_fully_delegated(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Exercise 11.2: write a ``.pte`` file only if XNNPACK runs every operator of ``model``.

    Export the model's inference behaviour for ``example`` and lower it with the XNNPACK
    partitioner, as in Exercise 11.1. If any operator is left outside the delegated subgraphs,
    write nothing and raise ``PortableOperatorsError`` with a message that names every such
    operator (as ``operator_name`` does) and the submodule it comes from, by its qualified name
    in ``model.named_modules()`` (such as ``features.0.2``), so that whoever reads it knows
    which layer to change. Otherwise write the program to ``path`` and return it as a ``Path``.
    """
    # BEGIN SOLUTION
    # Hint: node.meta["nn_module_stack"] maps each module the node was traced through, the
    # outermost first, to a (qualified name, class) pair; the model itself is "".
    model.eval()
    program = torch.export.export(model, (example.contiguous(),))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    outside = []
    for node in edge.exported_program().graph_module.graph.nodes:
        if node.op == "call_function" and operator_name(node) not in ("getitem", DELEGATE_CALL):
            stack = list(node.meta.get("nn_module_stack", {}).values())
            where = stack[-1][0] if stack and stack[-1][0] else "the model's own forward"
            outside.append(f"{operator_name(node)} (from {where})")
    if outside:
        raise PortableOperatorsError(
            f"{len(outside)} operator(s) would run on ExecuTorch's portable kernels, not "
            f"XNNPACK: {', '.join(outside)}; nothing was written")
    path = Path(path)
    path.write_bytes(edge.to_executorch().buffer)
    return path
    # END SOLUTION
