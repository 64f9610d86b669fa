"""The detectors: VampireNet for the castle, a torchvision backbone for production.

Introduced in Chapter 1.

VampireNet is small enough to train on a laptop CPU in well under a minute. The production model
is a standard torchvision architecture, heavy enough that the optimisations of later chapters
(ONNX Runtime, quantization, batching) show clearly. Both map a normalised ``(N, 3, H, W)`` batch
to ``(N, 2)`` logits ordered as ``portraits.LABELS``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models

from vampire_detector.portraits import LABELS


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv, batch norm, ReLU, then halve the resolution."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class VampireNet(nn.Module):
    """Three conv blocks, global average pooling and a linear classifier (about 24k weights).

    Batch norm and dropout are here on purpose: they behave differently in ``train()`` and
    ``eval()`` mode, which is the first mistake the course teaches to avoid.
    """

    def __init__(self, num_classes: int = len(LABELS), width: int = 16, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(3, width),
            _conv_block(width, 2 * width),
            _conv_block(2 * width, 4 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _resnet18() -> nn.Module:
    return models.resnet18(weights=None, num_classes=len(LABELS))


def _mobilenet_v3_small() -> nn.Module:
    return models.mobilenet_v3_small(weights=None, num_classes=len(LABELS))


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "vampirenet": VampireNet,
    "resnet18": _resnet18,  # Dracula's production model
    "mobilenet_v3_small": _mobilenet_v3_small,
}
PRODUCTION_ARCH = "resnet18"


def build_model(arch: str = "vampirenet") -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (no pretrained weights, no download)."""
    try:
        return ARCHITECTURES[arch]()
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of "
                         f"{sorted(ARCHITECTURES)}") from None
