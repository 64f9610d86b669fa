"""The Dockerfiles and the build context, checked without a Docker engine."""

from __future__ import annotations

import subprocess

import pytest

from vampire_detector.paths import course_root
from vampire_detector.shipping.build_context import build_context
from vampire_detector.shipping.dockerfile import (
    HADOLINT,
    context_sources,
    env_vars,
    exec_form,
    final_stage,
    hadolint,
    instructions,
    option,
)

ROOT = course_root()
FACTORY = "vampire_detector.service.app:create_app"
DOCKERFILES = [ROOT / "deploy/docker/Dockerfile", ROOT / "deploy/docker/Dockerfile.cuda",
               ROOT / "deploy/lambda/Dockerfile"]
SERVING = DOCKERFILES[:2]  # the two images that run uvicorn themselves


MODEL_FILE = "models/vampirenet.onnx"  # the images' input, made by `make model-file`


@pytest.fixture(scope="module")
def context() -> list[str]:
    if not (ROOT / MODEL_FILE).is_file():
        pytest.fail(f"{MODEL_FILE} is missing: run `make model-file` first", pytrace=False)
    return build_context(ROOT, (ROOT / ".dockerignore").read_text())


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint_finds_nothing(dockerfile):
    """Every Dockerfile passes hadolint (inline ignores, where justified, are honoured)."""
    result = subprocess.run([str(HADOLINT), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_bites(tmp_path):
    """A Dockerfile with a moving base tag, root, and an unpinned install is rejected."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nRUN pip install fastapi\nCMD uvicorn app:app\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3002", "DL3013"} <= codes, codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_bases_are_pinned(dockerfile):
    """Every FROM names a tag or a digest (or an earlier stage), never latest."""
    found = instructions(dockerfile)
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in found
            if i.keyword == "ARG" and "=" in i.args}
    stages = set()
    for instruction in (i for i in found if i.keyword == "FROM"):
        image, *rest = instruction.args.split()
        image = args.get(image.strip("${}"), image) if image.startswith("$") else image
        if image not in stages:
            tag = image.rpartition(":")[2]
            assert "@sha256:" in image or (":" in image and tag != "latest"), image
        stages |= {rest[-1]} if rest else set()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_copy_source_is_in_the_context(dockerfile, context):
    """Whatever a Dockerfile COPYs exists and survives the .dockerignore."""
    for source in context_sources(instructions(dockerfile)):
        assert (ROOT / source).exists(), source
        assert any(f == source.rstrip("/") or f.startswith(source.rstrip("/") + "/")
                   for f in context), f"{source} is left out of the build context"


def test_context_is_small_and_clean(context):
    """The context holds the library, the serving pins and the model file: no venv, git, book,
    bytecode, and not the model file's neighbours."""
    assert all(f.startswith(("vampire_detector/", "deploy/requirements-serve.txt"))
               or f == MODEL_FILE for f in context), [
        f for f in context if not f.startswith("vampire_detector/")]
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]
    assert sum((ROOT / f).stat().st_size for f in context) < 2_000_000


@pytest.mark.parametrize("dockerfile", SERVING, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_serving_image_policies(dockerfile):
    """Non-root, one uvicorn worker on the factory, a /health check on the served port, the
    metrics on a port of their own."""
    stage = final_stage(instructions(dockerfile))
    user = [i.args for i in stage if i.keyword == "USER"][-1]
    assert user.split(":")[0] not in {"root", "0"}
    command = exec_form([i.args for i in stage if i.keyword == "CMD"][-1])
    assert command[0] == "uvicorn" and FACTORY in command and "--factory" in command
    assert option(command, "--workers") == "1"
    port = option(command, "--port")
    env = env_vars(stage)
    assert [i.args.split() for i in stage if i.keyword == "EXPOSE"] == [
        [port, env["VAMPIRE_METRICS_PORT"]]]
    assert env["VAMPIRE_METRICS_PORT"] != port
    check = [i.args for i in stage if i.keyword == "HEALTHCHECK"][-1]
    assert f"127.0.0.1:{port}/health" in check
    assert env["VAMPIRE_RUNTIME"] == "onnx"
    assert env["VAMPIRE_THREADS"] == env["OMP_NUM_THREADS"]


def test_lambda_image_names_the_handler():
    """The Lambda image's CMD is module.attribute of the handler, and the module exists."""
    stage = final_stage(instructions(ROOT / "deploy/lambda/Dockerfile"))
    (target,) = exec_form([i.args for i in stage if i.keyword == "CMD"][-1])
    module, _, attribute = target.rpartition(".")
    assert attribute == "handler"
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()


@pytest.mark.parametrize("dockerfile", SERVING, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_uvicorn_bounds_what_clients_can_hold(dockerfile):
    """A connection cap (503 beyond), short idle keep-alives, bounded headers, a drain."""
    stage = final_stage(instructions(dockerfile))
    command = exec_form([i.args for i in stage if i.keyword == "CMD"][-1])
    assert 1 <= int(option(command, "--limit-concurrency")) <= 1000
    assert 1 <= int(option(command, "--timeout-keep-alive")) <= 30
    assert int(option(command, "--h11-max-incomplete-event-size")) <= 64 * 1024
    assert int(option(command, "--timeout-graceful-shutdown")) > 0


@pytest.mark.parametrize("dockerfile", SERVING, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_image_grants_every_gpu_by_default(dockerfile):
    """Which GPUs a container sees is the host's choice (--gpus, the device plugin)."""
    assert "NVIDIA_VISIBLE_DEVICES" not in env_vars(final_stage(instructions(dockerfile)))


def test_build_context_reads_patterns_as_docker_does(tmp_path):
    """Classes of characters, ``**``, the last match winning, ``!`` letting a path back in."""
    for name in ("app/main.py", "app/main.pyc", "app/sub/mod.pyo", "app/keys.toml", "data/x.npz",
                 "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    ignore = "*\n!app\n**/*.py[cod]\n!app/sub/mod.pyo\napp/keys.*\n"
    assert build_context(tmp_path, ignore) == ["app/main.py", "app/sub/mod.pyo"]
    assert build_context(tmp_path, "app/keys.toml\n!app/keys.toml\n") == sorted(
        ["README.md", "app/keys.toml", "app/main.py", "app/main.pyc", "app/sub/mod.pyo",
         "data/x.npz"])
