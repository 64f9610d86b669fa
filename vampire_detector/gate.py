"""The garlic gate: refuse portraits too dark or too blank to judge, before the detector runs.

Introduced in Chapter 2.

At night the checkpoint's camera sends black frames and lens caps; a detector asked about them
still answers, with confidence. The gate measures each portrait's brightness and contrast in
pixel space and gives ``REJECTED`` instead of a probability for the ones it cannot trust.

The gate exists in three versions because each deployment path accepts different Python:

- ``DraftGarlicGate``: Renfield's first draft. Correct in eager mode, but it loops over the
  batch in Python and calls NumPy, so a trace bakes in the batch size and every decision, and
  TorchScript refuses to compile it. Kept to show those failures, never to deploy.
- ``GarlicGate``: the same decisions in typed tensor code with one data-dependent branch (skip
  the network when nobody in the batch is usable). ``torch.jit.script`` keeps that branch.
- ``ExportableGarlicGate``: the branch written as ``torch.cond``, which ``torch.export`` can
  capture; a plain Python ``if`` on a tensor's value is a graph break for it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vampire_detector.images import MEAN, STD

REJECTED = -1.0  # the score of a refused portrait: never a valid probability
MIN_BRIGHTNESS = 0.15  # mean pixel value in [0, 1] below which a portrait is too dark
MIN_CONTRAST = 0.03  # pixel standard deviation below which a portrait is blank


class GarlicGate(nn.Module):
    """P(vampire) per portrait, or ``REJECTED`` for dark or blank ones; scriptable.

    ``detector`` maps a normalised ``(N, 3, H, W)`` batch to ``(N, 2)`` logits.
    """

    def __init__(self, detector: nn.Module, min_brightness: float = MIN_BRIGHTNESS,
                 min_contrast: float = MIN_CONTRAST):
        super().__init__()
        self.detector = detector
        self.min_brightness = min_brightness
        self.min_contrast = min_contrast
        self.rejected = REJECTED  # an attribute: TorchScript cannot read module-level floats
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def usable(self, x: torch.Tensor) -> torch.Tensor:
        """A ``(N,)`` boolean mask: True where a portrait is bright and varied enough to judge."""
        pixels = x * self.std + self.mean  # undo the normalisation: thresholds are in [0, 1]
        bright = pixels.mean(dim=(1, 2, 3)) >= self.min_brightness
        varied = pixels.std(dim=(1, 2, 3)) >= self.min_contrast
        return bright & varied

    def judge(self, x: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
        """Run the detector on the whole batch and refuse the unusable rows."""
        scores = torch.softmax(self.detector(x), dim=1)[:, 1]
        return torch.where(usable, scores, torch.full_like(scores, self.rejected))

    def refuse_all(self, x: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
        """``REJECTED`` for every portrait, without running the detector."""
        return torch.full_like(x[:, 0, 0, 0], self.rejected)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        usable = self.usable(x)
        if bool(usable.any()):  # data-dependent: a trace keeps only the path it saw
            return self.judge(x, usable)
        return self.refuse_all(x, usable)  # a night of black frames costs no convolution


class ExportableGarlicGate(GarlicGate):
    """``GarlicGate`` with its branch as ``torch.cond``, so ``torch.export`` records both paths."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        usable = self.usable(x)
        return torch.cond(usable.any(), self.judge, self.refuse_all, (x, usable))


class DraftGarlicGate(nn.Module):
    """Renfield's first gate: right answers in eager mode, wrong for tracing and scripting.

    It loops over the portraits in Python (a trace unrolls the loop for the example's batch
    size), converts tensors to NumPy floats (a trace freezes them as constants) and takes an
    unannotated optional argument (TorchScript assumes every unannotated argument is a Tensor).
    """

    def __init__(self, detector: nn.Module, min_brightness: float = MIN_BRIGHTNESS):
        super().__init__()
        self.detector = detector
        self.min_brightness = min_brightness
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x, min_brightness=None):  # no type hints: that is one of its mistakes
        threshold = min_brightness if min_brightness is not None else self.min_brightness
        pixels = (x * self.std + self.mean).detach().cpu().numpy()
        scores = []
        for portrait, image in zip(x, pixels, strict=True):
            if np.mean(image) < threshold or np.std(image) < MIN_CONTRAST:
                scores.append(torch.tensor(REJECTED, device=x.device))
            else:
                logits = self.detector(portrait[None])
                scores.append(torch.softmax(logits, dim=1)[0, 1])
        return torch.stack(scores)
