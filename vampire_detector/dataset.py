"""Portraits as a torch ``Dataset``, rendered once and kept in memory as normalised tensors.

Introduced in Chapter 1.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from vampire_detector.portraits import IMAGE_SIZE, SPLITS, make_portraits
from vampire_detector.tensors import to_batch


class PortraitDataset(Dataset):
    """``n`` portraits of one split and population: ``(image tensor, label)`` pairs.

    Rendering a few thousand 64x64 portraits takes about a second, far less than decoding them
    from disk would in a real project, so nothing is cached between runs.
    """

    def __init__(self, n: int, split: str = "train", population: str = "clean",
                 size: int = IMAGE_SIZE):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
        self.images, labels = make_portraits(n, SPLITS[split], population, size)
        self.inputs = to_batch(self.images)
        self.labels = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.labels[index]
