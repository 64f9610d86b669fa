"""ONNX export: one portable file that the border checkpoint can run without PyTorch.

Introduced in Chapter 4.

The export uses the torch.export-based exporter (``dynamo=True``), names the input and output so
that runtimes can find them, and keeps the batch axis dynamic: a model exported with a fixed batch
of 1 refuses the checkpoint's first batch of 8. Every file written here has passed
``onnx.checker``, so a broken graph fails at export time, not at the border.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn
from torch.export import Dim

from vampire_detector.paths import require_file
from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.weights import load_model

INPUT_NAME = "images"  # normalised float32 (batch, 3, H, W), exactly vampire_detector.images
OUTPUT_NAME = "logits"  # float32 (batch, 2), ordered as portraits.LABELS
DEFAULT_OPSET = 20  # torch 2.14's default; the exporter has no translations below opset 18
MAX_BATCH = 4096


def export_onnx(model: nn.Module, path: str | Path, *, image_size: int = IMAGE_SIZE,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = True) -> Path:
    """Export ``model`` in eval mode to ``path`` and check the result; returns the path.

    The model is switched to eval mode (and left there): exporting in training mode would bake
    dropout and batch statistics into the graph.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    model.eval()
    device = next(model.parameters()).device
    example = torch.randn(2, 3, image_size, image_size, device=device)  # 2: never specialise
    dynamic = ({0: Dim("batch", min=1, max=MAX_BATCH)},) if dynamic_batch else None
    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                opset_version=opset, dynamic_shapes=dynamic)
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def export_trained(arch: str, path: str | Path, *, image_size: int = IMAGE_SIZE) -> Path:
    """Export the trained weights of ``arch`` (loaded on the CPU) to ``path``; returns the path."""
    return export_onnx(load_model(arch, device=torch.device("cpu")), path, image_size=image_size)


@dataclass(frozen=True)
class GraphSummary:
    """What is inside an ONNX file: its interface, its operators and the weight it carries."""

    opset: int
    inputs: dict[str, list[int | str]]  # name -> shape; a str is a named (dynamic) axis
    outputs: dict[str, list[int | str]]
    operators: dict[str, int]  # op type -> count, most frequent first
    initializers: int
    parameters: int
    file_bytes: int


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    dims = value.type.tensor_type.shape.dim
    return [dim.dim_param or dim.dim_value for dim in dims]


def describe(path: str | Path) -> GraphSummary:
    """Summarise the ONNX model at ``path`` (raises FileNotFoundError when it is missing)."""
    model = onnx.load(str(require_file(path)))
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    operators = Counter(node.op_type for node in model.graph.node)
    parameters = sum(int(torch.Size(tensor.dims).numel()) for tensor in model.graph.initializer)
    return GraphSummary(
        opset=opset,
        inputs={value.name: _shape(value) for value in model.graph.input},
        outputs={value.name: _shape(value) for value in model.graph.output},
        operators=dict(operators.most_common()),
        initializers=len(model.graph.initializer),
        parameters=parameters,
        file_bytes=path.stat().st_size,
    )
