"""LitServe for real: the detector as a LitAPI, started in its own process group, always stopped.

Introduced in Chapter 14.

LitServe (Lightning AI, Apache-2.0) is a maintained Python server built on FastAPI and uvicorn
with its own dynamic batching: the HTTP process parses each request and puts it on a queue; an
inference worker process (``workers`` per device) collects up to ``max_batch_size`` requests,
waiting at most ``batch_timeout`` seconds, then calls the API's steps on the batch:
``decode_request`` per request, ``batch``, ``predict``, ``unbatch``, ``encode_response`` per
answer.

The steps reuse what TorchServe's handler uses (``torchserve_handler``): the same decoding of the
upload (PNG, JPEG or WebP, cropped to the centred square, ``images.normalize`` for the model),
and the same model loading, so an ``.onnx`` file runs in ONNX Runtime and a ``.pt`` file in
eager PyTorch. A multipart upload reaches ``decode_request`` as Starlette's form, with the file
under the field the course's clients send (``image``). A request that is not a portrait is
refused with an ``HTTPException`` and its 4xx. LitServe's batched loop answers a whole batch with
the first exception raised in it, so one refused upload also refuses the good uploads that
shared its batch (``litserve/loops/simple_loops.py``, 0.2.19); the course's service and
TorchServe's handler answer each request on its own.

Run as a program (``python -m vampire_detector.harness.litserve_app --model FILE --port N``);
``running_litserve`` starts it that way, in its own session, and ``stop_group`` ends the whole
tree (the HTTP server, the inference workers) however the caller leaves.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException

from vampire_detector.harness.launch import HOST, free_port, stop_group, wait_until_ready
from vampire_detector.torchserve_handler import (
    Probabilities,
    Refusal,
    decode,
    label_of,
    load_probabilities,
)

PATH = "/predict"


@dataclass(frozen=True)
class LitServeConfig:
    """LitServe's knobs: its batching (in the inference worker), workers, torch/ORT threads."""

    max_batch_size: int = 8
    batch_timeout_ms: int = 5
    workers: int = 1  # inference worker processes
    threads: int = 1  # model threads per worker

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "workers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_timeout_ms < 0:
            raise ValueError("batch_timeout_ms must not be negative")


class VampireAPI(ls.LitAPI):
    """The detector's steps in LitServe's order; the model loads in each inference worker."""

    def __init__(self, model: Path, config: LitServeConfig) -> None:
        super().__init__(max_batch_size=config.max_batch_size,
                         batch_timeout=config.batch_timeout_ms / 1000, api_path=PATH)
        self.model, self.threads = Path(model), config.threads
        self.probabilities: Probabilities | None = None

    def setup(self, device: str) -> None:
        self.probabilities = load_probabilities(self.model, self.threads)

    def decode_request(self, request) -> np.ndarray:  # type: ignore[no-untyped-def]
        """The form's ``image`` file decoded to a portrait, or an HTTPException with its 4xx.

        ``request`` stays unannotated: LitServe reads the annotation to type its route, and
        without one it passes Starlette's parsed form (multipart) or JSON body."""
        upload = request.get("image") if hasattr(request, "get") else None
        if upload is None or not hasattr(upload, "file"):
            raise HTTPException(400, "send the portrait as a multipart file named 'image'")
        image = decode(upload.file.read())
        if isinstance(image, Refusal):
            raise HTTPException(image.status, image.message)
        return image

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, images: np.ndarray) -> np.ndarray:
        if self.probabilities is None:
            raise RuntimeError("setup() must load the model before predict()")
        return self.probabilities(images if images.ndim == 4 else images[None])

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, probabilities: np.ndarray) -> dict[str, Any]:
        return label_of(np.asarray(probabilities).reshape(-1))


def serve(model: Path, port: int, config: LitServeConfig) -> None:
    """Run LitServe in this process until it is stopped (the program's entry point)."""
    server = ls.LitServer(VampireAPI(model, config), accelerator="cpu", devices=1,
                          workers_per_device=config.workers, timeout=60)
    server.run(host=HOST, port=port, num_api_servers=1, log_level="warning",
               generate_client_file=False)


def command(model: Path, port: int, config: LitServeConfig) -> list[str]:
    return [sys.executable, "-m", "vampire_detector.harness.litserve_app", "--model", str(model),
            "--port", str(port), "--max-batch-size", str(config.max_batch_size),
            "--batch-timeout-ms", str(config.batch_timeout_ms),
            "--workers", str(config.workers), "--threads", str(config.threads)]


@dataclass
class LitServe:
    url: str
    process: subprocess.Popen
    path: str = PATH


@contextlib.contextmanager
def running_litserve(model: Path, config: LitServeConfig | None = None, *,
                     timeout_s: float = 120.0) -> Iterator[LitServe]:
    """Start LitServe on ``model`` on a free loopback port, wait for ``/health``, always stop
    its whole process group."""
    config = config or LitServeConfig()
    port = free_port()
    threads = str(config.threads)
    process = subprocess.Popen(
        command(model, port, config), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": threads, "VAMPIRE_THREADS": threads})
    url = f"http://{HOST}:{port}"
    try:
        wait_until_ready(url, process, timeout_s, "/health")
        yield LitServe(url, process)
    finally:
        stop_group(process)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the detector with LitServe")
    parser.add_argument("--model", type=Path, required=True, help="a .pt or .onnx file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-timeout-ms", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    # LitServe spawns its workers and pickles the API for them: the class must be this
    # module's, not ``__main__``'s, so the entry point calls the module by its name.
    from vampire_detector.harness import litserve_app

    config = LitServeConfig(args.max_batch_size, args.batch_timeout_ms, args.workers,
                            args.threads)
    litserve_app.serve(args.model, args.port, config)


if __name__ == "__main__":
    main()
