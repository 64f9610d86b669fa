"""Chapter 7 — Docker.

The Dockerfile is checked with hadolint and with the policies a reviewer would apply; then,
where an image builder is at hand and the course's own images are built (`make images`, which
caches the layers the exercise shares with them), it is built and its container started and
asked what a border guard would ask. Elsewhere that last test is skipped, and says so: the
instructor's grader builds it. The .dockerignore is checked by computing the build context it
leaves, with Docker's matching rules (the last matching line wins, "!" lets a path back in, a
pattern that matches a folder matches everything in it), in the gatehouse's repository: its
layout is the one the exercise describes, plus folders invented for each run.

Wrong answers these tests catch, each with feedback that names the problem:

- 7.1 ``healthcheck-with-curl``: a HEALTHCHECK that runs curl, which the slim image lacks.
- 7.1 ``copies-the-whole-context``: ``COPY . /srv/`` puts the whole build context in the image.
- 7.1 ``runs-as-root``: no USER line, so the service runs as root.
- 7.1 ``unpinned-base``: a base image by a moving tag (``python:3.11-slim``).
- 7.1 ``shell-form-cmd``: CMD in the shell form, so uvicorn never hears SIGTERM.
- 7.1 ``threads-not-matching-cpus``: eight threads in a container promised two CPUs.
- 7.1 ``human-readable-size``: ``VAMPIRE_MAX_UPLOAD_BYTES=2MB``, which the service's settings
  refuse at start: only the built image shows it, whose container exits before it is ready.
- 7.2 ``copies-the-library``: the course repository's own .dockerignore pasted in; it fits
  the course's layout, not the gatehouse's, and leaves out everything the build reads.
- 7.2 ``denylist``: a list of what to leave out, so a folder nobody listed slips in.
- 7.2 ``whole-models-folder``: ``!models/`` lets the training checkpoints back in.
- 7.2 ``secret-shut-out-too-early``: the secrets line above ``!gatehouse/``, which lets it
  back in (the last match wins).
- 7.2 ``bytecode-only-at-the-top``: ``__pycache__`` without ``**/`` matches the top folder only.
- 7.2 ``forgets-the-mounted-files``: only the COPY sources let back in, not the files that
  ``RUN --mount=type=bind`` reads.
"""

from __future__ import annotations

import re
import secrets
import shlex
from pathlib import Path

import pytest

from vampire_detector.shipping.build_context import build_context
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
# Programs a health check might call that python:3.11.14-slim-bookworm does not have.
NOT_IN_SLIM = {"curl", "wget", "nc", "netcat", "http"}
PINNED_TAG = re.compile(r"\d+\.\d+\.\d+")  # a whole release, 3.11.14, not a moving 3.11


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
    installed = " ".join(i.args for i in runtime if i.keyword == "RUN")
    for program in programs(check[re.search(r"\bCMD\b", check).end():]):
        assert program not in NOT_IN_SLIM or re.search(rf"install\b[^&;|]*\b{program}\b",
                                                       installed), (
            f"the HEALTHCHECK runs {program}, which the slim base image does not have: every "
            "check would fail and the container would be marked unhealthy")


def programs(command: str) -> list[str]:
    """The programs a HEALTHCHECK's command runs: the exec form's first word, or each
    command's first word in the shell form (after &&, ||, ; and |)."""
    words = exec_form(command.strip())
    if words is not None:
        return [Path(words[0]).name] if words else []
    found, start = [], True
    for word in shlex.split(command, posix=True):
        if word in {"&&", "||", ";", "|"}:
            start = True
        elif start:
            found.append(Path(word).name)
            start = False
    return found


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
    """7.1 The image copies what it needs from the build context, which exists, and no more"""
    sources = context_sources(instructions(dockerfile))
    whole = [s for s in sources if s.rstrip("/") in {".", "*", ""} or s.startswith("./*")]
    assert not whole, ("a COPY takes the whole build context into the image (with every file a "
                       "new folder brings): copy the files the image needs, one by one")
    # The model file is made by `make model-file` before any build, not kept in the repository.
    missing = [s for s in sources if not (ROOT / s).exists() and s != "models/vampirenet.onnx"]
    assert not missing, f"COPY sources missing from the repository root: {missing}"


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_base_image_is_pinned(dockerfile):
    """7.1 The serving stage starts from a base image pinned to a release or a digest"""
    found = instructions(dockerfile)
    image = final_stage(found)[0].args.split()[0]
    for name, default in (i.args.split("=", 1) for i in found
                          if i.keyword == "ARG" and "=" in i.args):
        image = image.replace(f"${{{name.strip()}}}", default.strip()).replace(
            f"${name.strip()}", default.strip())
    tag = image.rpartition(":")[2] if ":" in image.split("/")[-1] else ""
    assert "@sha256:" in image or PINNED_TAG.search(tag), (
        f"the serving stage starts from {image}, a tag that moves: pin the base image to a "
        "whole release (or a digest), or the image changes without a line of it changing")


# The lines the exercise gives, up to where 7.1 begins. The grader builds a Dockerfile only when
# they are all there, unchanged and first, and 7.1 adds only instructions that run nothing while
# building (no RUN, COPY, ADD, SHELL, ONBUILD, FROM): the build then executes the course's own
# commands, on the layers `make images` has already cached, and nothing a submission wrote.
GIVEN = (
    ("ARG", "PYTHON_IMAGE=python:3.11.14-slim-bookworm"),
    ("FROM", "${PYTHON_IMAGE} AS build"),
    ("COPY", "deploy/requirements-serve.txt /tmp/requirements-serve.txt"),
    ("RUN", "python -m venv /opt/serve && /opt/serve/bin/pip install --no-cache-dir -r "
            "/tmp/requirements-serve.txt"),
    ("FROM", "${PYTHON_IMAGE} AS runtime"),
    ("ENV", "PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "
            "PATH=/opt/serve/bin:$PATH"),
    ("RUN", "useradd --system --uid 20001 --user-group --no-create-home night-watch"),
    ("WORKDIR", "/srv"),
    ("COPY", "--from=build /opt/serve /opt/serve"),
    ("COPY", "vampire_detector/ /srv/vampire_detector/"),
    ("COPY", "models/vampirenet.onnx /srv/models/vampirenet.onnx"),
)
INERT = {"ENV", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "LABEL", "WORKDIR", "STOPSIGNAL"}
LATER = "; your instructor's grader builds it"  # a skip with this reason does not count here


def buildable(found: list[Instruction]) -> list[str]:
    """Why the grader will not build this Dockerfile (nothing when it will)."""
    given = [(i.keyword, " ".join(i.args.split())) for i in found[:len(GIVEN)]]
    if given != list(GIVEN):
        return ["the lines the exercise gives (up to COPY models/vampirenet.onnx) were changed"]
    added = [i for i in found[len(GIVEN):] if i.keyword not in INERT]
    return [f"line {i.line}: {i.keyword} (7.1 needs only ENV, USER, EXPOSE, HEALTHCHECK and CMD)"
            for i in added]


def course_builder():
    """The builder `make images` used, with the course's image already built on it; or a skip."""
    from vampire_detector.harness.images import BASE_TAG, find_builder, model_digest

    model = ROOT / "models" / "vampirenet.onnx"
    builder = find_builder()
    if builder is None:
        pytest.skip("no image builder on this machine (Docker, or buildah)" + LATER)
    if not model.is_file() or not builder.has(f"vampire-detector:{model_digest(model)}"):
        pytest.skip("the course's images are not built here (`make images` caches the "
                    "layers this build reuses)" + LATER)
    base = "python:3.11.14-slim-bookworm" if builder.name == "docker" else BASE_TAG
    return builder, base


@pytest.mark.exercise("7.1")
@pytest.mark.points(2)
@pytest.mark.timeout(300)
def test_the_image_builds_starts_and_judges_a_portrait(dockerfile, runtime):
    """7.1 The image builds, starts as its user, says ready, judges a portrait, refuses a text"""
    from vampire_detector.harness.images import ImageProblem, probe_serving

    refused = buildable(instructions(dockerfile))
    assert not refused, "the grader does not build this Dockerfile: " + "; ".join(refused)
    user = the(runtime, "USER").args.strip()
    assert user not in ROOT_USERS and not user.startswith(("root:", "0:")), \
        "the grader does not start an image that runs as root"
    command = served_command(runtime)
    assert "uvicorn" in Path(command[0]).name and FACTORY in command, \
        "the grader starts only an image whose CMD runs uvicorn with the service's factory"
    builder, base = course_builder()
    tag = f"localhost/night-shift-graded:{secrets.token_hex(6)}"  # graders may run at once
    built = False
    try:
        builder.build(dockerfile, tag, ROOT, build_args={"PYTHON_IMAGE": base})
        built = True
        probe_serving(builder, tag)
    except ImageProblem as problem:
        pytest.fail(f"the image built, but: {problem}", pytrace=False)
    except (RuntimeError, ValueError, TimeoutError) as error:
        pytest.fail(f"the image built, but its container did not serve: {error}" if built else
                    f"the image did not build:\n{str(error)[-1500:]}", pytrace=False)
    finally:
        builder.remove(tag)  # its layers above the course's are the student's alone


# Exercise 7.2 ------------------------------------------------------------------------------
# The gatehouse's repository, as the exercise describes it. Dockerfile and .dockerignore are
# sent whatever the file says (the builder needs them) and never copied, so they are not judged.

READ_BY_THE_BUILD = {
    "requirements.lock",
    "wheels/vampire_detector-1.0.0-py3-none-any.whl",
    "wheels/onnxruntime-1.23.2-cp311-cp311-manylinux_2_27_x86_64.whl",
    "wheels/numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl",
    "gatehouse/__init__.py", "gatehouse/app.py", "gatehouse/ledger.py",
    "gatehouse/routes/__init__.py", "gatehouse/routes/verdicts.py",
    "gatehouse/templates/verdict.html", "gatehouse/config/gate.toml",
    "models/vampirenet.onnx",
}
SECRETS = {".env", "gatehouse/config/secrets.toml"}
DATA = {"models/checkpoints/epoch-040.pt", "models/checkpoints/epoch-041.pt",
        "portraits/2026-10-31/coach-0001.png", "portraits/2026-11-01/coach-0002.png"}
REGENERATED = {"gatehouse/__pycache__/app.cpython-311.pyc",
               "gatehouse/routes/__pycache__/verdicts.cpython-311.pyc",
               "gatehouse/ledger.pyc"}
UNNEEDED = {"README.md", "docker-compose.yml", ".git/HEAD", ".git/objects/ab/cdef",
            ".venv/bin/python", ".venv/lib/python3.11/site-packages/torch/__init__.py",
            "tests/test_app.py", "notebooks/thresholds.ipynb",
            "notebooks/.ipynb_checkpoints/thresholds-checkpoint.ipynb"}
ALWAYS_SENT = {"Dockerfile", ".dockerignore"}


@pytest.fixture(scope="module")
def dockerignore(graded_file) -> str:
    return graded_file("ch07_docker/gatehouse/.dockerignore").read_text()


@pytest.fixture(scope="module")
def gatehouse(dockerignore, tmp_path_factory) -> tuple[set[str], set[str], set[str]]:
    """The context the .dockerignore leaves of the gatehouse, with folders invented this run.

    Returns the context, the invented files the build reads (a new module of the package)
    and the invented files it does not (a new folder at the top, a new one among the models).
    """
    root = tmp_path_factory.mktemp("gatehouse")
    word = secrets.token_hex(3)
    new_code = {f"gatehouse/night_{word}.py"}
    new_elsewhere = {f"crypt-{word}/ledger.csv", f"crypt-{word}/portraits/0001.png",
                     f"models/draft-{word}/vampirenet-int8.onnx", f"dump-{word}.sql"}
    everything = (READ_BY_THE_BUILD | SECRETS | DATA | REGENERATED | UNNEEDED | ALWAYS_SENT
                  | new_code | new_elsewhere)
    for name in everything:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    (root / ".dockerignore").write_text(dockerignore)
    return set(build_context(root, dockerignore)) - ALWAYS_SENT, new_code, new_elsewhere


@pytest.mark.exercise("7.2")
@pytest.mark.points(2)
def test_context_keeps_what_the_build_reads(gatehouse):
    """7.2 The gatehouse's context holds every file its build copies or mounts"""
    context, new_code, _ = gatehouse
    lost = sorted((READ_BY_THE_BUILD | new_code) - context)
    assert not lost, (f"the build context would lack {lost[:6]}: the build reads them (COPY, "
                      "or RUN --mount=type=bind), and the build would fail")


@pytest.mark.exercise("7.2")
@pytest.mark.points(2)
def test_context_keeps_secrets_and_data_out(gatehouse):
    """7.2 No secret and no data reach the gatehouse's context, not even beside copied files"""
    context, _, _ = gatehouse
    leaked = sorted(SECRETS & context)
    assert not leaked, (f"the build context would hold secrets: {leaked}; a COPY of their "
                        "folder would put them in every layer of the image")
    heavy = sorted(DATA & context)
    assert not heavy, (f"the build context would hold data the image never uses: {heavy[:4]}; "
                       "gigabytes of it, sent to the builder at every build")


@pytest.mark.exercise("7.2")
@pytest.mark.points(1)
def test_context_leaves_out_what_no_line_names(gatehouse):
    """7.2 Bytecode, tooling and folders nobody has listed stay out of the gatehouse's context"""
    context, new_code, new_elsewhere = gatehouse
    bytecode = sorted(REGENERATED & context)
    assert not bytecode, (f"the build context would hold files Python regenerates: "
                          f"{bytecode}; remember that a pattern without **/ matches at the top")
    slipped = sorted(new_elsewhere & context)
    assert not slipped, (f"files that did not exist when you wrote the file slip into the build "
                         f"context: {slipped[:4]}; a new folder must stay out without anyone "
                         "editing the file: make it an allowlist")
    extra = sorted(context - READ_BY_THE_BUILD - new_code)
    assert not extra, f"the build context would also hold {extra[:6]}, which the build never reads"
