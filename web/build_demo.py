"""Write the files of the edge chapter's in-browser detector into web/site/edge-demo/.

    npm ci --prefix web            # onnxruntime-web, pinned by web/package-lock.json
    python web/build_demo.py       # what `make web-demo` runs; `make book` then ships web/site

The book copies web/site into its HTML folder (``html_extra_path`` in _config.yml), so the demo's
files sit beside the pages: ONNX Runtime Web's script and WebAssembly files (from npm, never a
CDN), VampireNet exported to ONNX, a few held-out portraits as PNG files, and a manifest that
carries the preprocessing constants from vampire_detector.images, their one definition. This
script lives in web/, not tools/, because the student edition builds the book too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from vampire_detector.images import MEAN, STD, to_png
from vampire_detector.onnx_export import INPUT_NAME, OUTPUT_NAME, export_trained
from vampire_detector.portraits import IMAGE_SIZE, LABELS, SPLITS, make_portraits

WEB = Path(__file__).resolve().parent
SITE = WEB / "site" / "edge-demo"
PACKAGE = WEB / "node_modules" / "onnxruntime-web"
# The IIFE bundle (a global ``ort``) with only the WebAssembly backend, and the module and binary
# it loads at run time; the other builds (WebGPU, JSPI, asyncify) are not needed.
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PORTRAITS = 24


def copy_runtime(package: Path, out: Path) -> str:
    """Copy ONNX Runtime Web's files into ``out``; return the package's version."""
    missing = [name for name in RUNTIME_FILES if not (package / "dist" / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{package} lacks {', '.join(missing)}: run `npm ci --prefix web`")
    out.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copy2(package / "dist" / name, out / name)
    return json.loads((package / "package.json").read_text())["version"]


def write_portraits(out: Path, n: int = PORTRAITS) -> list[dict[str, str]]:
    """``n`` held-out portraits as PNG files; their manifest entries (file, how it was painted)."""
    out.mkdir(parents=True, exist_ok=True)
    images, labels = make_portraits(n, SPLITS["test"])
    entries = []
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"portrait-{index:02d}.png"
        (out / name).write_bytes(to_png(np.ascontiguousarray(image)))
        entries.append({"file": f"portraits/{name}", "painted": LABELS[int(label)]})
    return entries


def build(site: Path = SITE, package: Path = PACKAGE, n: int = PORTRAITS) -> Path:
    """Everything the demo loads, under ``site``; returns the manifest's path."""
    version = copy_runtime(package, site / "ort")
    (site / "model").mkdir(parents=True, exist_ok=True)
    export_trained("vampirenet", site / "model" / "vampirenet.onnx")
    manifest = {"runtime": version, "model": "model/vampirenet.onnx", "input": INPUT_NAME,
                "output": OUTPUT_NAME, "labels": list(LABELS), "size": IMAGE_SIZE,
                "mean": list(MEAN), "std": list(STD),
                "portraits": write_portraits(site / "portraits", n)}
    path = site / "portraits" / "portraits.json"
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portraits", type=int, default=PORTRAITS)
    args = parser.parse_args(argv)
    try:
        path = build(n=args.portraits)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote the in-browser detector's files; manifest: {path.relative_to(WEB.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
