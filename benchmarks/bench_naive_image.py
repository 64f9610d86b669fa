"""The two-stage serving image against the image a first attempt writes, built by one builder.

    python benchmarks/bench_naive_image.py            # several minutes: PyPI's torch is GBs
    python benchmarks/bench_naive_image.py --json benchmarks/results/naive_image.json

Both images are built from the repository root with the builder `make images` uses (Docker, or
buildah on the Debian stand-in base), every layer anew (no cache: the times are a first build's,
downloads included), started with their own commands and asked for a verdict.
The naive one (``benchmarks/naive.Dockerfile``) installs PyTorch from PyPI, the CUDA build with
its nvidia-* libraries, to export the model during the build; the shipped one
(``deploy/docker/Dockerfile``) is built from the model file exported beforehand. The naive image
is removed afterwards (``--keep`` keeps it): it is several gigabytes of disk. This is not a stage
of ``make test``: the download alone is gigabytes. Its last result is committed beside this file,
and Chapter 7 shows it with the machine and date it was measured on.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import httpx2 as httpx

from vampire_detector.bench import machine_summary, markdown_table
from vampire_detector.harness.images import (
    Builder,
    ensure_base,
    find_builder,
    model_digest,
    running_container,
)
from vampire_detector.images import to_png
from vampire_detector.paths import course_root
from vampire_detector.portraits import make_portraits

ROOT = course_root()
NAIVE = ROOT / "benchmarks" / "naive.Dockerfile"
SERVING = ROOT / "deploy" / "docker" / "Dockerfile"
MODEL_FILE = ROOT / "models" / "vampirenet.onnx"


def measure(builder: Builder, dockerfile: Path, tag: str, base: str) -> dict[str, object]:
    """Build ``dockerfile``, start its command, send one portrait: sizes, seconds, the verdict."""
    build_s = builder.build(dockerfile, tag, ROOT, build_args={"PYTHON_IMAGE": base},
                            cached=False)  # each build from the base up: a first build's time
    portrait = to_png(make_portraits(1, seed=3)[0][0])
    with running_container(builder, tag, timeout_s=300) as (url, ready_s), httpx.Client(
            base_url=url, timeout=30, trust_env=False) as client:
        answer = client.post("/predict", files={"image": ("p.png", portrait, "image/png")})
    answer.raise_for_status()
    return {"bytes": builder.size(tag), "build_s": round(build_s, 1),
            "start_to_ready_s": round(ready_s, 2), "label": answer.json()["label"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    parser.add_argument("--keep", action="store_true", help="keep the naive image afterwards")
    args = parser.parse_args(argv)
    if not MODEL_FILE.is_file():
        raise SystemExit("models/vampirenet.onnx is missing: run `make model-file` first")
    builder = find_builder()
    if builder is None:
        raise SystemExit("no image builder: install Docker, or buildah and debootstrap")
    base = ensure_base(builder)
    naive_tag = "localhost/vampire-detector-naive:measure"
    images = {"two stages, model file as input (deploy/docker/Dockerfile)": measure(
                  builder, SERVING, f"vampire-detector:{model_digest(MODEL_FILE)}", base)}
    try:
        images["one stage, torch from PyPI, export in the build"] = measure(
            builder, NAIVE, naive_tag, base)
    finally:
        if not args.keep:
            builder.remove(naive_tag)
    shipped, naive = images.values()
    report = {"measured": datetime.date.today().isoformat(),
              "machine": machine_summary(),
              "builder": builder.name, "base": base, "images": images,
              "size_ratio": round(naive["bytes"] / shipped["bytes"], 1)}
    print(markdown_table([{"image": name, "size (MB)": f"{m['bytes'] / 1e6:,.0f}",
                           "build (s)": m["build_s"], "start to ready (s)": m["start_to_ready_s"],
                           "verdict": m["label"]} for name, m in images.items()]))
    print(f"the naive image is {report['size_ratio']}x the shipped one")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
