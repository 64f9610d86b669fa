"""Chapter 1's probes: the submission's predict_proba on VampireNet, and preprocess_upload."""

from __future__ import annotations

import importlib

import numpy as np
import torch

from vampire_detector.weights import load_model


def tensor(value: object) -> dict[str, object]:
    """What the grader needs to know of a returned tensor, as plain data."""
    if not isinstance(value, torch.Tensor):
        return {"kind": type(value).__name__}
    return {"kind": "Tensor", "shape": list(value.shape), "dtype": str(value.dtype),
            "device": value.device.type, "requires_grad": bool(value.requires_grad),
            "values": value.detach().cpu().numpy()}


def predict_proba(inputs: np.ndarray, calls: int = 1, train: bool = False,
                  batch_size: int | None = None) -> dict[str, object]:
    """Call ``predict_proba`` ``calls`` times on a fresh VampireNet (handed over in train mode
    when ``train``) and the batch ``inputs``; return each result, the batch sizes the model saw
    and whether autograd was recording when it saw them."""
    ch01 = importlib.import_module("ch01_detector")
    model = load_model("vampirenet", device=torch.device("cpu"))
    if train:
        model.train()
    seen: list[int] = []
    recording: list[bool] = []

    def watch(module: torch.nn.Module, args: tuple) -> None:
        seen.append(len(args[0]))
        recording.append(torch.is_grad_enabled())

    model.register_forward_pre_hook(watch)
    torch.manual_seed(0)
    options = {} if batch_size is None else {"batch_size": batch_size}
    results = [tensor(ch01.predict_proba(model, torch.from_numpy(inputs), **options))
               for _ in range(calls)]
    return {"results": results, "batches": seen, "autograd": recording}


def preprocess_upload(data: bytes) -> dict[str, object]:
    """``preprocess_upload(data)``, described."""
    return tensor(importlib.import_module("ch01_detector").preprocess_upload(data))
