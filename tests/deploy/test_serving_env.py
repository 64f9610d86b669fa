"""The serving image's Python environment, rebuilt outside Docker: a virtual environment with
deploy/requirements-serve.txt alone (``make serving-env``), and the files the Dockerfile copies
beside it.

If the app needs a package that the image lacks (PyTorch, say), this is where it shows, not in
production, and on a machine with no image builder as well. Without ``make serving-env`` these
tests skip (and fail in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.programs import require
from vampire_detector.harness.launch import HOST, free_port, wait_until_ready
from vampire_detector.images import to_png
from vampire_detector.onnx_export import export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.paths import course_root
from vampire_detector.portraits import make_portraits
from vampire_detector.shipping.gateway import multipart

ROOT = course_root()
REQUIREMENTS = ROOT / "deploy" / "requirements-serve.txt"
PYTHON = ROOT / "_build" / "serving-env" / "bin" / "python"


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, names normalised as pip does."""
    found = {}
    for line in path.read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==")
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


@pytest.fixture(scope="module")
def image_env(tmp_path_factory) -> dict[str, Path]:
    """A venv with the serving requirements only, and /app as the Dockerfile lays it out."""
    built = (PYTHON.parent.parent / ".installed").is_file()  # pip finished (make's stamp)
    python = require(str(PYTHON) if built else None, "make serving-env")
    folder = tmp_path_factory.mktemp("serving-image")
    app = folder / "app"
    shutil.copytree(ROOT / "vampire_detector", app / "vampire_detector",
                    ignore=shutil.ignore_patterns("__pycache__"))
    model = export_trained("vampirenet", folder / "vampirenet.onnx")
    return {"python": Path(python), "app": app, "model": model}


def image_environ(image_env: dict[str, Path]) -> dict[str, str]:
    """The ENV lines of deploy/docker/Dockerfile, pointed at this test's folders."""
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(image_env["app"]),
            "VAMPIRE_RUNTIME": "onnx", "VAMPIRE_MODEL_PATH": str(image_env["model"]),
            "VAMPIRE_THREADS": "1", "OMP_NUM_THREADS": "1", "HOME": str(image_env["app"])}


def test_requirements_are_exact_pins_without_torch():
    """Every line pins one version, nothing of PyTorch is in it, and it matches the course's."""
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    assert all("==" in line for line in lines if line)
    assert not {"torch", "torchvision", "onnx", "onnxscript"} & pins(REQUIREMENTS).keys()
    from importlib.metadata import version  # the course's environment: the same versions
    for name, pinned in pins(REQUIREMENTS).items():
        try:
            assert version(name) == pinned, f"{name}: the course has {version(name)}"
        except ImportError:
            continue


def test_the_image_environment_has_no_torch(image_env):
    """PyTorch is not installed, and the ONNX Runtime path imports without it."""
    code = ("import importlib.util, sys; assert importlib.util.find_spec('torch') is None; "
            "import vampire_detector.ort_detector, vampire_detector.service.app, "
            "vampire_detector.service.lambda_handler; assert 'torch' not in sys.modules")
    result = subprocess.run([str(image_env["python"]), "-c", code], capture_output=True,
                            text=True, env=image_environ(image_env), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def served(image_env) -> Iterator[str]:
    """uvicorn started exactly as the image's CMD starts it, on loopback."""
    port = free_port()
    command = [str(image_env["python"]), "-m", "uvicorn", "--factory",
               "vampire_detector.service.app:create_app", "--host", HOST, "--port", str(port),
               "--workers", "1", "--log-level", "warning"]
    process = subprocess.Popen(command, env=image_environ(image_env), cwd=image_env["app"])
    url = f"http://{HOST}:{port}"
    try:
        wait_until_ready(url, process, timeout_s=120)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_image_environment_serves_predictions(served, image_env):
    """/health, /ready and /predict answer from the torch-free environment, correctly."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    for path in ("/health", "/ready"):
        assert opener.open(served + path, timeout=10).status == 200
    portraits = make_portraits(4, seed=707)[0]
    expected = OrtDetector(image_env["model"], threads=1).predict(portraits)
    for image, truth in zip(portraits, expected, strict=True):
        request = urllib.request.Request(
            served + "/predict", data=multipart(to_png(image)), method="POST",
            headers={"Content-Type": "multipart/form-data; boundary=----grader-5b2e9f"})
        body = json.loads(opener.open(request, timeout=30).read())
        assert body["label"] == truth.label
        assert abs(body["probability"] - truth.probability) < 1e-5
