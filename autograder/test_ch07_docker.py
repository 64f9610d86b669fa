"""Chapter 7 — Docker.

Nothing here needs a Docker engine: the Dockerfile is checked with hadolint and with the
policies a reviewer would apply, and the .dockerignore by computing the build context it
leaves, with Docker's matching rules (the last matching line wins, "!" lets a path back in, a
pattern that matches a folder matches everything in it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vampire_detector.shipping.build_context import build_context, ignore_rules, is_ignored
from vampire_detector.shipping.dockerfile import (
    Instruction,
    context_sources,
    copy_args,
    env_vars,
    exec_form,
    final_stage,
    hadolint,
    instructions,
    option,
)

ROOT = Path(__file__).resolve().parent.parent
FACTORY = "vampire_detector.service.app:create_app"
ROOT_USERS = {"root", "0", "root:root", "0:0"}


# The build context, as .dockerignore shapes it -----------------------------------------------


# Exercise 7.1 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dockerfile(graded_file) -> Path:
    return graded_file("ch07_docker/Dockerfile")


@pytest.fixture(scope="module")
def runtime(dockerfile) -> list[Instruction]:
    return final_stage(instructions(dockerfile))


def the(stage: list[Instruction], keyword: str) -> Instruction:
    """The last ``keyword`` instruction of the stage, which is the one that counts."""
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"the final stage has no {keyword} instruction"
    return found[-1]


def served_command(stage: list[Instruction]) -> list[str]:
    command = exec_form(the(stage, "CMD").args)
    assert command, ("write CMD in the exec form, a JSON list: in the shell form, uvicorn runs "
                     "under /bin/sh and never receives the SIGTERM that asks it to stop")
    return command


@pytest.mark.exercise("7.1")
@pytest.mark.points(2)
def test_dockerfile_passes_hadolint(dockerfile):
    """7.1 The Dockerfile passes hadolint, with no rule switched off"""
    findings = hadolint(dockerfile)
    assert not findings, "hadolint reports: " + "; ".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_image_runs_as_a_non_root_user(runtime):
    """7.1 The serving stage switches to a user that is not root"""
    user = the(runtime, "USER").args.strip()
    assert user not in ROOT_USERS, "the container would still run as root"
    assert not user.startswith(("root:", "0:")), "the container would still run as root"


@pytest.mark.exercise("7.1")
@pytest.mark.points(2)
def test_cmd_serves_the_factory_in_one_worker(runtime):
    """7.1 CMD runs the app factory with uvicorn, one worker, on every interface, port 8080"""
    command = served_command(runtime)
    assert "uvicorn" in Path(command[0]).name or command[:3] == ["python", "-m", "uvicorn"], \
        "the command should start uvicorn"
    assert FACTORY in command and "--factory" in command, \
        "uvicorn should call the app factory of vampire_detector.service.app (and be told so)"
    assert option(command, "--workers") in (None, "1"), \
        "one worker per container: the orchestrator scales containers, not worker processes"
    assert option(command, "--host") == "0.0.0.0", \
        "listen on every interface, or nothing outside the container can reach the service"
    assert option(command, "--port") == "8080", "the night shift serves on port 8080"
    exposed = {port.split("/")[0] for i in runtime if i.keyword == "EXPOSE"
               for port in i.args.split()}
    assert "8080" in exposed, "declare the port the service listens on with EXPOSE"


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_healthcheck_asks_the_liveness_endpoint(runtime):
    """7.1 HEALTHCHECK asks the service's liveness endpoint on the port it serves"""
    check = the(runtime, "HEALTHCHECK").args
    assert not check.upper().startswith("NONE"), "the HEALTHCHECK is switched off"
    assert re.search(r"\bCMD\b", check), "a HEALTHCHECK needs a CMD to run"
    assert re.search(r":8080/health\b", check), \
        "the check should request the liveness path of the service, on the port it listens on"
    assert "--timeout" in check, "give the check a timeout, or a hung service hangs the check"


@pytest.mark.exercise("7.1")
@pytest.mark.points(2)
def test_settings_and_threads_come_from_the_environment(runtime):
    """7.1 ENV sets the runtime, the model file, two threads, and where Python finds the code"""
    env = env_vars(runtime)
    assert env.get("VAMPIRE_RUNTIME") == "onnx", "the image serves the ONNX model"
    copied = {copy_args(i)[1] for i in runtime if i.keyword == "COPY"}
    assert env.get("VAMPIRE_MODEL_PATH") in copied, \
        "VAMPIRE_MODEL_PATH should name the model file that the stage copies in"
    assert env.get("VAMPIRE_THREADS") == env.get("OMP_NUM_THREADS") == "2", \
        "two CPUs, two threads: set VAMPIRE_THREADS and OMP_NUM_THREADS to match"
    code = [copy_args(i)[1] for i in runtime if i.keyword == "COPY"
            and any(s.rstrip("/") == "vampire_detector" for s in copy_args(i)[0])]
    folders = {str(Path(destination.rstrip("/")).parent) for destination in code}
    workdir = the(runtime, "WORKDIR").args
    assert folders & {*env.get("PYTHONPATH", "").split(":"), workdir}, \
        "Python must find the copied vampire_detector package: set PYTHONPATH"


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_every_copy_source_is_in_the_build_context(dockerfile):
    """7.1 Everything the Dockerfile copies from the build context exists in the repository"""
    missing = [s for s in context_sources(instructions(dockerfile)) if not (ROOT / s).exists()]
    assert not missing, f"COPY sources missing from the repository root: {missing}"


# Exercise 7.2 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dockerignore(graded_file) -> str:
    return graded_file("ch07_docker/.dockerignore").read_text()


@pytest.mark.exercise("7.2")
@pytest.mark.points(2)
def test_context_keeps_everything_the_image_copies(dockerignore):
    """7.2 With your .dockerignore, the context still holds every file the images copy"""
    rules = ignore_rules(dockerignore)
    files = []
    for source in context_sources(instructions(ROOT / "deploy" / "docker" / "Dockerfile")):
        path = ROOT / source
        files += [path] if path.is_file() else [
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    lost = [f.relative_to(ROOT).as_posix() for f in files
            if is_ignored(f.relative_to(ROOT).as_posix(), rules)]
    assert not lost, f"the build context would lack {lost[:5]}"


@pytest.mark.exercise("7.2")
@pytest.mark.points(2)
def test_context_leaves_out_everything_else(dockerignore, tmp_path):
    """7.2 Environments, caches, git, the book, secrets and new folders stay out of the context"""
    wanted = {"vampire_detector/model.py", "vampire_detector/weights/vampirenet.pt",
              "deploy/requirements-serve.txt"}
    unwanted = {".venv/lib/python3.11/site-packages/torch/__init__.py", ".git/HEAD",
                "_build/html/index.html", "vampire_detector/__pycache__/model.cpython-311.pyc",
                "book/07_docker.md", "deploy/k8s/base/deployment.yaml", ".env",
                "crypt-of-portraits/night-0001.npz", "notes/renfield.txt"}
    for name in wanted | unwanted:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    context = set(build_context(tmp_path, dockerignore))
    assert wanted <= context, f"the build context lacks {sorted(wanted - context)}"
    assert not context - wanted, f"the build context would also hold {sorted(context - wanted)}"
