"""Build the course's images with a real OCI builder, start them, and probe what they serve.

Introduced in Chapter 7.

Docker is used where a Docker engine answers. Elsewhere (this course's CI machines have none)
the images are built by buildah, Debian's daemonless builder, from the same Dockerfiles. The
official ``python:3.11-slim-bookworm`` base comes from a registry that such a machine may not
reach, so buildah builds on a stand-in made from Debian itself: ``debootstrap`` installs a
minimal bookworm with Debian's Python 3.11, whose virtual environment at ``/opt/python`` comes
first on ``PATH``, so that ``python`` and ``pip`` mean what they mean in the official image.
The stand-in is cached (a tarball under the weights cache's folder), and so are buildah's
layers, so only the first build on a machine pays for it.

buildah runs a container's processes with ``chroot`` isolation here (no OCI runtime is needed),
in the host's network namespace, as the image's own user: a probe reaches the server on a
loopback port chosen at start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import tarfile
import time
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from vampire_detector.harness.launch import HOST, free_port, stop_group, wait_until_ready
from vampire_detector.images import to_png
from vampire_detector.portraits import make_portraits

BASE_TAG = "localhost/course-python:3.11-bookworm"  # the stand-in for python:3.11-slim-bookworm
DEBIAN_MIRROR = os.environ.get("VAMPIRE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_BUNDLE = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
PATH_IN_BASE = "/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILT_TAG = re.compile(r"[0-9a-f]{12}(-build-stage|-cuda)?")  # what make images tags: see prune


def cache_dir() -> Path:
    root = Path(os.environ.get("VAMPIRE_WEIGHTS_CACHE", Path.home() / ".cache/vampire-detector"))
    return root / "images"


def run(command: Sequence[str], *, timeout_s: float = 1800, **kwargs) -> str:
    """Run a builder command; on failure, raise with the end of what it said."""
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout_s,
                          check=False, **kwargs)
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip()[-4000:]
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{said}")
    return done.stdout


@dataclass(frozen=True)
class Builder:
    """One OCI builder's command line: ``docker`` or ``buildah`` (with its own storage)."""

    name: str
    prefix: tuple[str, ...]

    def build(self, dockerfile: Path, tag: str, context: Path, *, target: str | None = None,
              build_args: dict[str, str] | None = None, cached: bool = True) -> float:
        """Build ``dockerfile`` as ``tag``; the seconds it took. ``cached=False`` builds every
        layer anew, for a build time that means what a first build costs."""
        command = [*self.prefix, "build" if self.name == "docker" else "bud",
                   "-f", str(dockerfile), "-t", tag]
        if not cached:
            command.append("--no-cache")
        if self.name == "buildah":
            command += ["--isolation", "chroot", "--format", "docker", "--layers"]
        for key, value in (build_args or {}).items():
            command += ["--build-arg", f"{key}={value}"]
        if target:
            command += ["--target", target]
        started = time.perf_counter()
        run([*command, str(context)])
        return time.perf_counter() - started

    def size(self, tag: str) -> int:
        """The image's size in bytes, as the builder reports it (uncompressed layers)."""
        if self.name == "docker":
            return int(run([*self.prefix, "image", "inspect", "-f", "{{.Size}}", tag]).strip())
        (found,) = json.loads(run([*self.prefix, "images", "--json", tag]))
        number, unit = found["size"].split()  # buildah says e.g. "460 MB" (powers of 1000)
        return round(float(number) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit])

    def config(self, tag: str) -> dict:
        """The image's run configuration: Cmd, Env, User, ExposedPorts, WorkingDir."""
        if self.name == "docker":
            return json.loads(run([*self.prefix, "image", "inspect", tag]))[0]["Config"]
        inspected = json.loads(run([*self.prefix, "inspect", "--type", "image", tag]))
        return inspected["Docker"]["config"]

    def remove(self, tag: str) -> None:
        """Remove the image ``tag`` if it exists (its layers go once no other image uses them)."""
        subprocess.run([*self.prefix, "rmi", tag], capture_output=True, check=False)

    def tags(self) -> list[str]:
        """Every ``repository:tag`` in the builder's storage, without a registry's prefix."""
        if self.name == "docker":
            names = run([*self.prefix, "images", "--format",
                         "{{.Repository}}:{{.Tag}}"]).split()
        else:
            names = [name for image in json.loads(run([*self.prefix, "images", "--json"]))
                     for name in image.get("names") or ()]
        return [name.removeprefix("localhost/").removeprefix("docker.io/library/")
                for name in names if "<none>" not in name]

    def prune(self, repositories: Sequence[str], keep: Sequence[str]) -> list[str]:
        """Remove the images of ``repositories`` that a build named after an older model left
        (tags of the form ``<12 hex digits>[-build-stage|-cuda]``, not in ``keep``); the
        tags that went. A tag given by hand (``vampire-detector:1.0.0``) is never touched.

        Each new model file is a new tag, and the old images would stay: about 2 GB more in
        the builder's storage at every new model. buildah's storage is the course's own, so
        once stale images went, its leftover build containers (from an interrupted build) and
        the untagged images go too. Those hold the layer cache as well, so the first build
        after a new model is a cold one (about 20 s here). Run it alone: a build running at the
        same moment on the same storage would lose its cache. Docker's storage is the user's:
        only the course's stale tags are removed there.
        """
        def stale_tag(tag: str) -> bool:
            repository, _, version = tag.rpartition(":")
            return (repository in repositories and tag not in keep
                    and BUILT_TAG.fullmatch(version) is not None)

        stale = [tag for tag in self.tags() if stale_tag(tag)]
        if not stale:
            return []
        if self.name == "buildah":  # a leftover container would keep its image alive
            subprocess.run([*self.prefix, "rm", "--all"], capture_output=True, check=False)
        for tag in stale:
            self.remove(tag)
        if self.name == "buildah":
            subprocess.run([*self.prefix, "rmi", "--prune"], capture_output=True, check=False)
        left = set(self.tags())
        return [tag for tag in stale if tag not in left]

    def has(self, tag: str) -> bool:
        command = ([*self.prefix, "image", "inspect", tag] if self.name == "docker"
                   else [*self.prefix, "inspect", "--type", "image", tag])
        return subprocess.run(command, capture_output=True, check=False).returncode == 0


def find_builder(storage: Path | None = None) -> Builder | None:
    """Docker when its engine answers, else buildah (on its own storage), else None."""
    if shutil.which("docker") and subprocess.run(
            ["docker", "info"], capture_output=True, check=False).returncode == 0:
        return Builder("docker", ("docker",))
    if shutil.which("buildah"):
        storage = storage or cache_dir() / "storage"
        return Builder("buildah", ("buildah", "--root", str(storage), "--runroot",
                                   str(storage.parent / "run"), "--storage-driver", "overlay"))
    return None


def debian_rootfs(cache: Path) -> Path:
    """A tarball of a minimal Debian bookworm with Python 3.11, made once by debootstrap."""
    tarball = cache / "bookworm-python3.11.tar"
    if tarball.is_file():
        return tarball
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is needed to make the base image: "
                           "apt-get install debootstrap")
    cache.mkdir(parents=True, exist_ok=True)
    rootfs = cache / "rootfs.partial"
    shutil.rmtree(rootfs, ignore_errors=True)
    run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
         "bookworm", str(rootfs), DEBIAN_MIRROR])
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    partial = tarball.with_suffix(".partial")
    with tarfile.open(partial, "w") as archive:
        archive.add(rootfs, arcname=".")
    partial.rename(tarball)  # complete or absent: an interrupted run starts again
    shutil.rmtree(rootfs)
    return tarball


def ensure_base(builder: Builder, cache: Path | None = None) -> str:
    """The stand-in Python base image for buildah (made once); Docker pulls the real one."""
    if builder.name == "docker":
        return "python:3.11.14-slim-bookworm"
    if builder.has(BASE_TAG):
        return BASE_TAG
    tarball = debian_rootfs(cache or cache_dir())
    container = run([*builder.prefix, "from", "scratch"]).strip()
    try:
        mounted = Path(run([*builder.prefix, "mount", container]).strip())
        with tarfile.open(tarball) as archive:
            archive.extractall(mounted, filter="fully_trusted")  # our own debootstrap output
        # The build machine's certificate authorities, so that pip inside a build trusts
        # whatever this machine trusts (a company proxy's CA, say), as the host's pip does.
        shutil.copyfile(HOST_CA_BUNDLE, mounted / "etc/ssl/certs/ca-certificates.crt")
        run([*builder.prefix, "umount", container])
        run([*builder.prefix, "config", "--env", f"PATH={PATH_IN_BASE}", "--env", "LANG=C.UTF-8",
             "--env", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt", "--cmd", "python3",
             container])
        run([*builder.prefix, "run", "--isolation", "chroot", container, "--",
             "python3", "-m", "venv", "/opt/python"])
        run([*builder.prefix, "commit", "--format", "docker", container, BASE_TAG])
    finally:
        subprocess.run([*builder.prefix, "rm", container], capture_output=True, check=False)
    return BASE_TAG


def model_digest(model_file: Path) -> str:
    """The first 12 hex digits of the model file's SHA-256: the image tag names its model."""
    return hashlib.sha256(model_file.read_bytes()).hexdigest()[:12]


@contextlib.contextmanager
def running_container(builder: Builder, tag: str, *, port: int | None = None,
                      env: dict[str, str] | None = None,
                      ready_path: str = "/ready", ready_statuses: Container[int] = (200,),
                      timeout_s: float = 120.0) -> Iterator[tuple[str, float]]:
    """Start ``tag``'s own command (its CMD, as its USER), serving on a free loopback port;
    yield the URL and the seconds until ``ready_path`` answers one of ``ready_statuses``;
    always stop it."""
    config = builder.config(tag)
    command = list(config["Cmd"])
    port = port or free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = HOST
    env = {"VAMPIRE_METRICS_PORT": str(free_port()), **(env or {})}
    if builder.name == "docker":
        name = f"probe-{port}"
        start = [*builder.prefix, "run", "--rm", "--name", name, "--network", "host",
                 *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
                 tag, *command]
        stop = [*builder.prefix, "rm", "-f", name]
    else:
        container = run([*builder.prefix, "from", tag]).strip()
        start = [*builder.prefix, "run", "--isolation", "chroot",
                 *[arg for key, value in env.items() for arg in ("--env", f"{key}={value}")],
                 container, "--", *command]
        stop = [*builder.prefix, "rm", container]
    started = time.perf_counter()
    process = subprocess.Popen(start, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        try:
            wait_until_ready(url, process, timeout_s, ready_path, ready_statuses)
        except RuntimeError as error:  # it exited: what it said is the reason
            said = process.stderr.read().decode(errors="replace").strip()[-1500:]
            raise RuntimeError(f"{error}; it said:\n{said}") from None
        yield url, time.perf_counter() - started
    finally:
        stop_group(process, grace_s=20.0)
        subprocess.run(stop, capture_output=True, check=False)


def run_in_image(builder: Builder, tag: str, command: Sequence[str],
                 env: dict[str, str] | None = None) -> str:
    """Run one command in a fresh container of ``tag``, as the image's user; its stdout."""
    pairs = [(key, value) for key, value in (env or {}).items()]
    if builder.name == "docker":  # --entrypoint: the Lambda base image has one of its own
        return run([*builder.prefix, "run", "--rm", "--entrypoint", command[0],
                    *[a for k, v in pairs for a in ("-e", f"{k}={v}")], tag, *command[1:]])
    container = run([*builder.prefix, "from", tag]).strip()
    try:
        return run([*builder.prefix, "run", "--isolation", "chroot",
                    *[a for k, v in pairs for a in ("--env", f"{k}={v}")], container, "--",
                    *command])
    finally:
        subprocess.run([*builder.prefix, "rm", container], capture_output=True, check=False)


class ImageProblem(RuntimeError):
    """An image that builds but does not do what it must: the message says what it did."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ImageProblem(message)


def probe_serving(builder: Builder, tag: str,
                  env: dict[str, str] | None = None) -> dict[str, object]:
    """Start the image's own command; ask it what a border guard and a prankster would."""
    uid = run_in_image(builder, tag, ["python", "-c", "import os; print(os.getuid())"]).strip()
    check(uid not in ("", "0"), f"the image runs as root (uid {uid!r})")
    portrait = to_png(make_portraits(1, seed=3)[0][0])
    with running_container(builder, tag, env=env) as (url, ready_s), httpx.Client(
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


def probe_lambda(builder: Builder, tag: str, event_file: Path) -> dict[str, object]:
    """Invoke the image's handler on a recorded API Gateway event, inside the image."""
    event = event_file.read_text()
    code = ("import json, sys; from vampire_detector.service.lambda_handler import handler; "
            "print(json.dumps(handler(json.loads(sys.argv[1]), None)))")
    config = builder.config(tag)
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    answer = json.loads(run_in_image(builder, tag, ["python", "-c", code, event], env={
        "PYTHONPATH": env.get("LAMBDA_TASK_ROOT", "/var/task")}).strip().splitlines()[-1])
    check(answer.get("statusCode") == 200, f"the handler answered {answer}")
    return {"statusCode": answer["statusCode"], "body": json.loads(answer["body"])}


def probe_cuda(builder: Builder, tag: str, timeout_s: float = 60.0) -> dict[str, object]:
    """The GPU image where no GPU (or no CUDA library) is: it must carry the GPU build of
    ONNX Runtime, refuse to serve as shipped rather than fall back to the CPU unseen (its
    liveness check says why), and, told to use the CPU, serve like the CPU image."""
    code = "import onnxruntime as o; print(o.__version__, *o.get_available_providers())"
    version, *available = run_in_image(builder, tag, ["python", "-c", code]).split()
    check("CUDAExecutionProvider" in available,
          f"onnxruntime {version} in the image is not the GPU build: it offers {available}")
    with running_container(builder, tag, ready_path="/health", ready_statuses=(200, 503),
                           timeout_s=timeout_s) as (url, _), httpx.Client(
            base_url=url, timeout=10, trust_env=False) as client:
        deadline = time.monotonic() + timeout_s
        while (health := client.get("/health")).status_code == 200:
            check(client.get("/ready").status_code != 200,
                  "without CUDA the image got ready anyway: it would serve on the CPU")
            check(time.monotonic() < deadline, f"neither ready nor failed in {timeout_s:.0f} s")
            time.sleep(0.2)
    check(health.status_code == 503, f"/health answered {health.status_code}: {health.text}")
    check("CUDAExecutionProvider did not load" in health.text,
          f"it failed, but not for want of CUDA: {health.text}")
    reason = health.json()["error"]["message"]  # the service's error body: JSON, as checked
    return {"onnxruntime": version, "providers_in_build": available,
            "as_shipped_without_cuda": reason,
            "on_the_cpu": probe_serving(builder, tag, env={"VAMPIRE_PROVIDER": "cpu"})}
