"""web/build_demo.py: the files the in-browser detector loads, written from the library."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vampire_detector.images import MEAN, STD, from_png
from vampire_detector.ort_detector import OrtDetector
from web.build_demo import RUNTIME_FILES, build, copy_runtime


@pytest.fixture
def package(tmp_path):
    """A stand-in for npm's onnxruntime-web folder: the three files, and its version."""
    folder = tmp_path / "onnxruntime-web"
    (folder / "dist").mkdir(parents=True)
    for name in RUNTIME_FILES:
        (folder / "dist" / name).write_text(f"// {name}\n")
    (folder / "package.json").write_text(json.dumps({"version": "9.9.9"}))
    return folder


def test_the_site_holds_runtime_model_portraits_and_manifest(package, tmp_path):
    site = tmp_path / "site"
    manifest = json.loads(build(site, package, n=3).read_text())
    assert manifest["runtime"] == "9.9.9"
    assert (manifest["mean"], manifest["std"]) == (list(MEAN), list(STD))
    assert all((site / "ort" / name).is_file() for name in RUNTIME_FILES)
    images = np.stack([from_png((site / entry["file"]).read_bytes())
                       for entry in manifest["portraits"]])
    assert images.shape == (3, manifest["size"], manifest["size"], 3)
    assert OrtDetector(site / manifest["model"]).probabilities(images).shape == (3, 2)


def test_a_missing_npm_install_says_how_to_fix_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci --prefix web"):
        copy_runtime(tmp_path / "nothing", tmp_path / "out")
