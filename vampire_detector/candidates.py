"""The model updates of make-up night: small VampireNets trained in seconds, and cached.

Introduced in Chapter 13.

When vampires start wearing make-up, Dracula trains an update. A candidate differs from the
champion only in what it saw: ``makeup_share`` of its training portraits come from the
``"makeup"`` population (the same sitters, painted). One trained on clean portraits alone
learns that vampires are pale, and make-up hides exactly that; one that saw painted vampires
has to find the fangs and the missing reflection. Each candidate is trained once per machine
(seeded, deterministic kernels) and its weights are kept in the weights cache.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vampire_detector.model import build_model
from vampire_detector.portraits import SPLITS, make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.train import deterministic
from vampire_detector.weights import cache_dir, load_model, locked


@dataclass(frozen=True)
class Candidate:
    name: str
    makeup_share: float = 0.0  # of the training portraits, drawn from the make-up population
    epochs: int = 2
    n_train: int = 800
    lr: float = 0.01
    seed: int = 1
    from_champion: bool = False  # fine-tune the committed VampireNet instead of starting afresh


# Renfield's rushed retrain from scratch on clean portraits, and Dracula's fine-tune of the
# champion on a crowd where half the vampires are painted. Both take seconds on a CPU.
CANDIDATES = {
    "clean-only": Candidate("clean-only"),
    "with-makeup": Candidate("with-makeup", makeup_share=0.5, epochs=1, lr=0.002,
                             from_champion=True),
}


def training_set(candidate: Candidate) -> TensorDataset:
    """The candidate's training portraits: the same sitters, ``makeup_share`` of them painted."""
    n_makeup = round(candidate.n_train * candidate.makeup_share)
    clean, clean_labels = make_portraits(candidate.n_train, SPLITS["train"], "clean")
    painted, painted_labels = make_portraits(candidate.n_train, SPLITS["train"], "makeup")
    pick = np.random.default_rng(candidate.seed).permutation(candidate.n_train)[:n_makeup]
    clean[pick], clean_labels[pick] = painted[pick], painted_labels[pick]
    return TensorDataset(to_batch(clean), torch.from_numpy(clean_labels))


def train_candidate(candidate: Candidate) -> nn.Module:
    """Train ``candidate`` from scratch on the CPU; returns it in eval mode."""
    with deterministic():
        torch.manual_seed(candidate.seed)
        model = (load_model("vampirenet", device=torch.device("cpu")) if candidate.from_champion
                 else build_model("vampirenet"))
        data = training_set(candidate)
        loader = DataLoader(data, batch_size=64, shuffle=True,
                            generator=torch.Generator().manual_seed(candidate.seed))
        optimizer = torch.optim.AdamW(model.parameters(), lr=candidate.lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=candidate.lr, total_steps=candidate.epochs * len(loader))
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        for _ in range(candidate.epochs):
            for inputs, labels in loader:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(inputs), labels).backward()
                optimizer.step()
                schedule.step()
    return model.eval()


def load_candidate(name: str) -> nn.Module:
    """The trained candidate ``name`` (see ``CANDIDATES``), trained first if not cached."""
    if name not in CANDIDATES:
        raise ValueError(f"unknown candidate {name!r}; choose one of {sorted(CANDIDATES)}")
    candidate = CANDIDATES[name]
    path = cache_dir() / "candidates" / f"{name}.pt"
    recipe = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        if not path.exists() or not recipe.exists() or json.loads(recipe.read_text()) != asdict(
                candidate):
            torch.save(train_candidate(candidate).state_dict(), path)
            recipe.write_text(json.dumps(asdict(candidate)))
    model = build_model("vampirenet")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
