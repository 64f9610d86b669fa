"""Train a detector on fresh portraits, report its held-out accuracy, and save its weights.

Introduced in Chapter 1.

    python -m vampire_detector.train                   # reproduces the committed VampireNet
    python -m vampire_detector.train --arch resnet18   # the production model, into the cache

The same seed on the same machine gives the same weights and the same accuracy: the data, the
initialisation and the shuffling are all seeded, and only deterministic kernels are used.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from vampire_detector.dataset import PortraitDataset
from vampire_detector.device import pick_device
from vampire_detector.model import ARCHITECTURES, build_model
from vampire_detector.weights import locked, save_weights, weights_path


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "vampirenet"
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.01
    n_train: int = 6000
    n_val: int = 2000
    seed: int = 0


# How each architecture is trained by default: the production model learns fast from fewer,
# larger steps, and each of its epochs costs about twenty times VampireNet's.
RECIPES = {
    "vampirenet": TrainConfig(),
    "resnet18": TrainConfig(arch="resnet18", epochs=2, n_train=2000, n_val=500, lr=0.003),
    "mobilenet_v3_small": TrainConfig(arch="mobilenet_v3_small", epochs=4, lr=0.003),
}


@torch.inference_mode()
def evaluate(model: nn.Module, data: PortraitDataset, device: torch.device,
             batch_size: int = 256) -> float:
    """Accuracy of ``model`` on ``data``, in eval mode."""
    model.eval()
    correct = 0
    for inputs, labels in DataLoader(data, batch_size=batch_size):
        logits = model(inputs.to(device))
        correct += int((logits.argmax(1).cpu() == labels).sum())
    return correct / len(data)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Use only deterministic kernels inside the block, and restore the caller's setting after."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def train(config: TrainConfig, device: torch.device | None = None,
          log: Callable[[str], None] = print) -> tuple[nn.Module, dict[str, float]]:
    """Train ``config.arch`` from scratch; return the model (in eval mode) and its metrics."""
    with deterministic():
        return _train(config, device or pick_device(), log)


def _train(config: TrainConfig, device: torch.device,
           log: Callable[[str], None]) -> tuple[nn.Module, dict[str, float]]:
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    train_set = PortraitDataset(config.n_train, "train")
    val_set = PortraitDataset(config.n_val, "val")
    model = build_model(config.arch).to(device)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * len(loader))
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, config.epochs + 1):
        model.train()
        total = 0.0
        for inputs, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs.to(device)), labels.to(device))
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(labels)
        accuracy = evaluate(model, val_set, device)
        log(f"epoch {epoch}/{config.epochs}  loss {total / len(train_set):.4f}  "
            f"held-out accuracy {accuracy:.2%}  ({time.perf_counter() - start:.1f} s)")
    metrics = {"val_accuracy": accuracy, "seconds": round(time.perf_counter() - start, 1)}
    return model.eval(), metrics


def train_and_save(config: TrainConfig, out: Path, device: torch.device | None = None,
                   log: Callable[[str], None] = print) -> dict[str, float]:
    """Train, then save the weights and how they were made to ``out``; return the metrics."""
    model, metrics = train(config, device, log)
    save_weights(model, out, {"config": asdict(config), "metrics": metrics,
                              "torch": torch.__version__})
    return metrics


def ensure_weights(arch: str, log: Callable[[str], None] = print) -> Path:
    """The weights of ``arch``, trained with its recipe first if this machine has none yet.

    Processes that ask at the same time (parallel tests, several notebooks) train them once:
    the first trains, the others wait for it and load what it saved.
    """
    path = weights_path(arch)
    if path.exists():
        return path
    with locked(path):
        if not path.exists():  # another process may have trained them while this one waited
            log(f"no {arch} weights in {path.parent} yet: training them once (seed "
                f"{RECIPES[arch].seed})")
            train_and_save(RECIPES[arch], path, log=log)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vampire_detector.train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vampirenet", choices=sorted(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, help="default: the architecture's recipe")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-val", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="default: CUDA when present, else CPU")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to save the weights (default: the committed file for --arch)")
    parser.add_argument("--if-missing", action="store_true",
                        help="train with the recipe only if this machine has no weights yet "
                             "(the cached step before tests and notebooks)")
    args = parser.parse_args(argv)
    if args.if_missing:
        print(f"{args.arch} weights: {ensure_weights(args.arch)}")
        return
    for name in ("epochs", "batch_size", "n_train", "n_val"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    chosen = {field: getattr(args, field) for field in asdict(RECIPES[args.arch])
              if getattr(args, field, None) is not None}
    config = replace(RECIPES[args.arch], **chosen)
    try:
        device = pick_device(args.device)
    except RuntimeError as error:
        parser.error(str(error))
    out = args.out or weights_path(config.arch)
    metrics = train_and_save(config, out, device)
    print(f"held-out accuracy {metrics['val_accuracy']:.2%} after {metrics['seconds']} s; "
          f"saved {out}")


if __name__ == "__main__":
    main()
