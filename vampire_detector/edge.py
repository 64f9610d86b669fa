"""ExecuTorch for the watchmen's phones (Chapter 11, "To the edge and into the browser").

A phone runs no Python. ExecuTorch takes a ``torch.export`` program, hands the parts that a
*delegate* (here XNNPACK, the optimised CPU kernels that Android and iOS builds ship) can run to
that delegate, and writes everything into one flat ``.pte`` file that a small C++ runtime
executes. The steps are: export, ``to_edge_transform_and_lower`` with the XNNPACK partitioner,
``to_executorch``, save. Operators the delegate cannot take stay behind and run on ExecuTorch's
portable kernels, which are correct but slow: ``delegation`` counts them, and
``require_full_delegation`` refuses such a program.

INT8 for XNNPACK goes through PT2E quantization with ``XNNPACKQuantizer``: the same export,
annotate, calibrate, convert steps as Chapter 5, with a quantizer that knows XNNPACK's kernels.
On the host, ``executorch.runtime`` runs a ``.pte`` file with the same kernels a phone would use,
so ``PteDetector`` can prove parity and measure before anything is installed on a phone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from executorch.exir import EdgeProgramManager, to_edge_transform_and_lower
from executorch.runtime import Runtime
from torch import nn
from torch.export import ExportedProgram
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

from vampire_detector.images import normalize
from vampire_detector.portraits import IMAGE_SIZE, LABELS
from vampire_detector.predictor import Predictor, softmax

DELEGATE_CALL = "executorch_call_delegate"


def export_for_edge(model: nn.Module, *, batch_size: int = 1,
                    image_size: int = IMAGE_SIZE) -> ExportedProgram:
    """``torch.export`` of ``model`` in eval mode, for a fixed batch (a phone sees one portrait).

    A fixed shape lets XNNPACK plan its memory once, ahead of time.
    """
    if batch_size < 1 or image_size < 1:
        raise ValueError(f"batch_size and image_size must be positive, got {batch_size}, "
                         f"{image_size}")
    model.eval()
    example = torch.randn(batch_size, 3, image_size, image_size)
    return torch.export.export(model, (example,))


def lower_to_xnnpack(program: ExportedProgram) -> EdgeProgramManager:
    """The edge program with every subgraph XNNPACK supports handed to the XNNPACK delegate."""
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])


def save_pte(edge: EdgeProgramManager, path: str | Path) -> Path:
    """Serialise ``edge`` to the ``.pte`` file at ``path`` (its folder must exist)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    path.write_bytes(edge.to_executorch().buffer)
    return path


@dataclass(frozen=True)
class Delegation:
    """Where the operators of a lowered program run: in a delegate, or on portable kernels."""

    subgraphs: int  # calls into the delegate
    delegated: dict[str, int]  # operator -> count, inside delegated subgraphs
    portable: dict[str, int]  # operator -> count, left to ExecuTorch's portable kernels

    @property
    def share(self) -> float:
        """The fraction of operators that the delegate runs (1.0: the whole graph)."""
        inside, outside = sum(self.delegated.values()), sum(self.portable.values())
        return inside / (inside + outside) if inside + outside else 0.0


def _operator(node: torch.fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target))


def _computes(node: torch.fx.Node) -> bool:
    """An operator call; unpacking a tuple (``getitem``) and the delegate's call compute nothing."""
    return node.op == "call_function" and _operator(node) not in ("getitem", DELEGATE_CALL)


def delegation(edge: EdgeProgramManager) -> Delegation:
    """Count the operators of ``edge`` inside and outside its delegated subgraphs."""
    module = edge.exported_program().graph_module
    delegated, portable, subgraphs = Counter(), Counter(), 0
    for node in module.graph.nodes:
        if node.op == "get_attr" and node.target.startswith("lowered_module"):
            subgraphs += 1
            inner = getattr(module, node.target).original_module.graph_module
            delegated.update(_operator(n) for n in inner.graph.nodes if _computes(n))
        elif _computes(node):
            portable[_operator(node)] += 1
    return Delegation(subgraphs, dict(delegated.most_common()), dict(portable.most_common()))


class NotDelegatedError(ValueError):
    """A program that would run some operators on the slow portable kernels."""


def require_full_delegation(edge: EdgeProgramManager) -> Delegation:
    """``delegation(edge)``, or ``NotDelegatedError`` naming the operators left outside."""
    found = delegation(edge)
    if found.portable:
        names = ", ".join(f"{name} x{count}" for name, count in found.portable.items())
        raise NotDelegatedError(f"these operators would run on ExecuTorch's portable kernels, "
                                f"not XNNPACK: {names}")
    return found


def quantize_for_xnnpack(model: nn.Module, calibration: torch.Tensor, *,
                         batch_size: int = 1) -> ExportedProgram:
    """An INT8 export of ``model`` for XNNPACK, calibrated on the ``calibration`` inputs.

    PT2E: export, annotate with ``XNNPACKQuantizer`` (symmetric INT8, one scale per output
    channel for the weights), observe the calibration portraits, convert, and export again for
    ``lower_to_xnnpack``. The calibration inputs are normalised ``(N, 3, H, W)`` tensors, fed
    ``batch_size`` at a time because the graph has a fixed batch; a remainder is left out.
    """
    if len(calibration) < batch_size:
        raise ValueError(f"calibration needs at least {batch_size} portrait(s): without them "
                         "the activation ranges are unknown")
    graph = export_for_edge(model, batch_size=batch_size,
                            image_size=calibration.shape[-1]).module()
    config = get_symmetric_quantization_config(is_per_channel=True)
    quantizer = XNNPACKQuantizer().set_global(config)
    observed = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for start in range(0, len(calibration) - batch_size + 1, batch_size):
            observed(calibration[start:start + batch_size])
    converted = convert_pt2e(observed)
    example = torch.randn(batch_size, *calibration.shape[1:])
    return torch.export.export(converted, (example,))


class PteDetector(Predictor):
    """A ``.pte`` program run by ``executorch.runtime``, one portrait per call as on a phone."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no .pte program at {path}; write one with save_pte()")
        self.method = Runtime.get().load_program(path).load_method("forward")

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """The program's output for one normalised batch of the size it was exported with."""
        return self.method.execute([batch.contiguous()])[0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 2)`` for RGB ``uint8`` images ``(N, H, W, 3)``."""
        if len(images) == 0:
            return np.empty((0, len(LABELS)), np.float32)
        inputs = torch.from_numpy(normalize(images))
        logits = [self.logits(inputs[i:i + 1]).numpy() for i in range(len(inputs))]
        return softmax(np.concatenate(logits))
