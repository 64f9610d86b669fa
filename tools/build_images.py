"""Build the serving and Lambda images with a real builder, run them, and probe them.

    python tools/build_images.py            # what `make images` runs (after `make model-file`)
    python tools/build_images.py --json _build/images.json

The serving image must start as its own (non-root) user, say ready, name a portrait's verdict
and refuse a non-image with a 4xx; the Lambda image must answer a recorded API Gateway event
through its handler, inside the image. Anything else fails loudly, with what the image said.
The CUDA image is built as well, from NVIDIA's base with Docker; buildah, which cannot reach
that base, builds it on the Debian stand-in, which has no CUDA libraries. Either way no GPU is
at hand, so its probe checks what can be checked without one: the GPU build of ONNX Runtime
is inside, the image refuses to serve as shipped instead of quietly using the CPU, and with
``VAMPIRE_PROVIDER=cpu`` the rest of it serves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from vampire_detector.harness.images import (  # noqa: E402
    Builder,
    ImageProblem,
    ensure_base,
    find_builder,
    model_digest,
    probe_cuda,
    probe_lambda,
    probe_serving,
)

MODEL_FILE = ROOT / "models" / "vampirenet.onnx"
SERVING = ROOT / "deploy" / "docker" / "Dockerfile"
CUDA = ROOT / "deploy" / "docker" / "Dockerfile.cuda"
LAMBDA = ROOT / "deploy" / "lambda" / "Dockerfile"
EVENT = ROOT / "deploy" / "lambda" / "events" / "v2-predict.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write what was measured here")
    args = parser.parse_args(argv)
    if not MODEL_FILE.is_file():
        raise SystemExit(f"{MODEL_FILE.relative_to(ROOT)} is missing: run `make model-file`")
    builder = find_builder()
    if builder is None:
        raise SystemExit("no image builder: install Docker, or buildah and debootstrap "
                         "(apt-get install buildah debootstrap)")
    base = ensure_base(builder)
    version = model_digest(MODEL_FILE)
    report: dict[str, object] = {"builder": builder.name, "base": base, "model": version}
    serving, lambda_ = f"vampire-detector:{version}", f"vampire-detector-lambda:{version}"
    cuda = f"{serving}-cuda"
    report["removed"] = builder.prune(("vampire-detector", "vampire-detector-lambda"),
                                      keep=(serving, f"{serving}-build-stage", lambda_, cuda))
    report["serving_build_s"] = round(builder.build(
        SERVING, serving, ROOT, build_args={"PYTHON_IMAGE": base}), 1)
    report["serving_bytes"] = builder.size(serving)
    builder.build(SERVING, f"{serving}-build-stage", ROOT, target="build",
                  build_args={"PYTHON_IMAGE": base})  # from the cache: only its size is new
    report["build_stage_bytes"] = builder.size(f"{serving}-build-stage")
    report["base_bytes"] = builder.size(base)
    try:
        report["serving"] = probe_serving(builder, serving)
    except ImageProblem as problem:
        raise SystemExit(f"the serving image {serving} failed its probe: {problem}") from None
    lambda_base = {} if builder.name == "docker" else {"LAMBDA_IMAGE": lambda_base_image(
        builder, base)}
    report["lambda_build_s"] = round(builder.build(LAMBDA, lambda_, ROOT,
                                                   build_args=lambda_base), 1)
    report["lambda_bytes"] = builder.size(lambda_)
    try:
        report["lambda"] = probe_lambda(builder, lambda_, EVENT)
    except ImageProblem as problem:
        raise SystemExit(f"the Lambda image {lambda_} failed its probe: {problem}") from None
    cuda_base = {} if builder.name == "docker" else {"CUDA_IMAGE": base}  # no CUDA inside
    report["cuda_base"] = cuda_base.get("CUDA_IMAGE", "nvidia/cuda (the Dockerfile's)")
    report["cuda_build_s"] = round(builder.build(CUDA, cuda, ROOT, build_args=cuda_base), 1)
    report["cuda_bytes"] = builder.size(cuda)
    try:
        report["cuda"] = probe_cuda(builder, cuda)
    except ImageProblem as problem:
        raise SystemExit(f"the CUDA image {cuda} failed its probe: {problem}") from None
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def lambda_base_image(builder: Builder, base: str) -> str:
    """AWS's Lambda base image stands in as the Python base plus what the Dockerfile relies on:
    ``LAMBDA_TASK_ROOT`` (/var/task). The handler is then called directly, not through the
    Lambda runtime API, which only AWS (or its emulator) provides."""
    tag = "localhost/course-lambda-python:3.11-bookworm"
    if not builder.has(tag):
        dockerfile = ROOT / "_build" / "images" / "Dockerfile.lambda-base"
        dockerfile.parent.mkdir(parents=True, exist_ok=True)
        dockerfile.write_text(f"FROM {base}\nENV LAMBDA_TASK_ROOT=/var/task\n"
                              "WORKDIR /var/task\n")
        builder.build(dockerfile, tag, dockerfile.parent)
    return tag


if __name__ == "__main__":
    raise SystemExit(main())
