"""Build the serving and Lambda images with a real builder, run them, and probe them.

    python tools/build_images.py            # what `make images` runs (after `make model-file`)
    python tools/build_images.py --json _build/images.json

The serving image must start as its own (non-root) user, say ready, name a portrait's verdict
and refuse a non-image with a 4xx; the Lambda image must answer a recorded API Gateway event
through its handler, inside the image. Anything else fails loudly, with what the image said.
The CUDA image's base (nvidia/cuda) is not built here: its registry may be unreachable and no
GPU is needed to check its Dockerfile, which the deployment tests lint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from vampire_detector.harness.images import (  # noqa: E402
    Builder,
    ensure_base,
    find_builder,
    model_digest,
    run_in_image,
    running_container,
)
from vampire_detector.images import to_png  # noqa: E402
from vampire_detector.portraits import make_portraits  # noqa: E402

MODEL_FILE = ROOT / "models" / "vampirenet.onnx"
SERVING = ROOT / "deploy" / "docker" / "Dockerfile"
LAMBDA = ROOT / "deploy" / "lambda" / "Dockerfile"
EVENT = ROOT / "deploy" / "lambda" / "events" / "v2-predict.json"


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"image check failed: {message}")


def probe_serving(builder: Builder, tag: str) -> dict[str, object]:
    """Start the image's own command; ask it what a border guard and a prankster would."""
    uid = run_in_image(builder, tag, ["python", "-c", "import os; print(os.getuid())"]).strip()
    check(uid not in ("", "0"), f"the image runs as root (uid {uid!r})")
    portrait = to_png(make_portraits(1, seed=3)[0][0])
    with running_container(builder, tag) as (url, ready_s), httpx.Client(
            base_url=url, timeout=30, trust_env=False) as client:
        check(client.get("/ready").status_code == 200, "/ready is not 200 once ready")
        answer = client.post("/predict", files={"image": ("p.png", portrait, "image/png")})
        check(answer.status_code == 200, f"a portrait got {answer.status_code}: {answer.text}")
        verdict = answer.json()
        check(verdict.get("label") in ("human", "vampire"), f"no verdict in {verdict}")
        refused = client.post("/predict", files={"image": ("x.txt", b"garlic", "text/plain")})
        check(400 <= refused.status_code < 500,
              f"a text file got {refused.status_code}, not a 4xx: {refused.text}")
        metrics_closed = client.get("/metrics").status_code == 404
    return {"uid": int(uid), "start_to_ready_s": round(ready_s, 2), "verdict": verdict,
            "non_image_status": refused.status_code, "metrics_off_the_front_door": metrics_closed}


def probe_lambda(builder: Builder, tag: str) -> dict[str, object]:
    """Invoke the image's handler on a recorded API Gateway event, inside the image."""
    event = EVENT.read_text()
    code = ("import json, sys; from vampire_detector.service.lambda_handler import handler; "
            "print(json.dumps(handler(json.loads(sys.argv[1]), None)))")
    config = builder.config(tag)
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    answer = json.loads(run_in_image(builder, tag, ["python", "-c", code, event], env={
        "PYTHONPATH": env.get("LAMBDA_TASK_ROOT", "/var/task")}).strip().splitlines()[-1])
    check(answer.get("statusCode") == 200, f"the handler answered {answer}")
    return {"statusCode": answer["statusCode"], "body": json.loads(answer["body"])}


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
    report["serving_build_s"] = round(builder.build(
        SERVING, serving, ROOT, build_args={"PYTHON_IMAGE": base}), 1)
    report["serving_bytes"] = builder.size(serving)
    builder.build(SERVING, f"{serving}-build-stage", ROOT, target="build",
                  build_args={"PYTHON_IMAGE": base})  # from the cache: only its size is new
    report["build_stage_bytes"] = builder.size(f"{serving}-build-stage")
    report["base_bytes"] = builder.size(base)
    report["serving"] = probe_serving(builder, serving)
    lambda_base = {} if builder.name == "docker" else {"LAMBDA_IMAGE": lambda_base_image(
        builder, base)}
    report["lambda_build_s"] = round(builder.build(LAMBDA, lambda_, ROOT,
                                                   build_args=lambda_base), 1)
    report["lambda_bytes"] = builder.size(lambda_)
    report["lambda"] = probe_lambda(builder, lambda_)
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
