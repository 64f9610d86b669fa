"""Sealed grading: the student's code runs in a sandboxed process; the tests stay outside.

The graded tests run in the grader's own process. They reach a submission through
``Sandbox.module(name)``, a stand-in whose functions run in a child process and send back only
plain data (see ``sandbox_child.py``). So the expected values, the points and the results file
all live where the student's code cannot reach them: it can monkeypatch numpy, register atexit
handlers or raise whatever it likes, and it changes nothing but its own process.

The child is built to hold nothing worth stealing and to be stopped at will:

* **bubblewrap** (``bwrap``, the Debian package ``bubblewrap``) mounts only the system, the
  Python installation, a copy of the course library, the grader's public probes
  (``autograder/probes/``, importable as ``grading_probes``), a fresh copy of the submission
  (read only) and one exchange folder it may write (``Sandbox.exchange``), through which files
  cross both ways. The repository, ``solutions/``, the withheld cases and the results are not
  in its world at all. It runs as ``nobody`` in its own user, PID, network and IPC namespaces,
  with a clean environment, and dies with the grader.
* ``resource`` limits: CPU seconds, address space, processes (threads count) and file size;
  when grading runs as root, whom the kernel exempts from the process limit, a ``pids`` cgroup
  caps the processes instead (``process_limit()`` says which one this machine uses).
* A wall-clock deadline on every call, kept by the grader: the child cannot switch it off.
  When it passes, or when the child crashes, the whole process group (and with bubblewrap the
  whole PID namespace) is killed and the next call starts a fresh child.

Without bubblewrap (``ISOLATION == "process"``) the child still has the limits, the deadline, a
clean environment and a fresh folder without the repository on ``sys.path``, but it could open
the repository's files by their absolute paths: grade submissions where ``bwrap`` is installed.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

from autograder import sandbox_child
from autograder.library_answers import CLOSED
from autograder.sandbox_child import decode, encode

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent / "vampire_detector"
PROBES = HERE / "probes"  # the grader's public probes: they run beside the submission
PROBE_PACKAGE = "grading_probes"  # the probes' name in the child, next to the course library
BWRAP = shutil.which("bwrap")
ISOLATION = "bubblewrap" if BWRAP else "process"
MOUNT = Path("/grading")  # where the child sees its world, with bubblewrap
NOBODY = 65534
PIDS = Path("/sys/fs/cgroup/pids")  # cgroup v1's pids controller, where it is mounted


@dataclass(frozen=True)
class Limits:
    """What one sandboxed child may use before it is stopped."""

    cpu_s: int = 300
    memory_bytes: int = 6 * 2**30  # address space: torch alone reserves a few GiB of it
    processes: int = 64  # tasks, threads included
    file_bytes: int = 256 * 2**20
    call_s: float = 60.0  # wall clock, per call


class SandboxError(Exception):
    """The sandboxed code broke the grading itself: it timed out, crashed or spoke nonsense."""


class RemoteError(Exception):
    """An exception raised by the sandboxed code whose type is not one of Python's own."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


class Sandbox:
    """One child process holding one submission; restarted after a timeout or a crash."""

    def __init__(self, submission: Path, limits: Limits = Limits(), isolation: str = ISOLATION):
        self.submission, self.limits, self.isolation = Path(submission), limits, isolation
        self.process: subprocess.Popen | None = None
        self.pids: Path | None = None  # the child's cgroup, where the process limit needs one
        self.folder: Path | None = None
        self.generation = 0  # handles of an earlier child are void in a new one
        self._exchange: Path | None = None

    def module(self, name: str) -> RemoteObject:
        """The submission's module ``name``, imported in the child (again, after a restart)."""
        module = self.request({"op": "import", "module": name}, self.limits.call_s)
        object.__setattr__(module, "_module", name)
        return module

    def probes(self, chapter: str) -> RemoteObject:
        """The grader's probes of ``chapter`` (``autograder/probes/chNN.py``), in the child."""
        return self.module(f"{PROBE_PACKAGE}.{chapter}")

    def request(self, message: dict, timeout_s: float) -> object:
        if self.process is None or self.process.poll() is not None:
            self.start()
        try:
            sandbox_child.write_frame(self.requests, message)
            answer = self.receive(timeout_s)
        except SandboxError:
            self.stop()
            raise
        except (BrokenPipeError, OSError, ValueError) as error:
            self.stop()
            raise SandboxError(f"the grading process stopped answering ({error})") from None
        except BaseException:  # e.g. the test's own timeout: the channel is out of step now
            self.stop()
            raise
        if "error" in answer:
            raise remote_exception(answer["error"])
        return decode(answer["ok"], self.resolve)

    def receive(self, timeout_s: float) -> dict:
        """The child's answer, read within the deadline; the child never sets it."""
        deadline = time.monotonic() + timeout_s
        ready, _, _ = select.select([self.answers], [], [], timeout_s)
        if not ready:
            raise SandboxError(f"Timed out after {timeout_s:g} s: does your code wait for "
                               "something that never comes, or loop forever?")
        answer = sandbox_child.read_frame(_Deadline(self.answers, deadline))
        if answer is None:
            status = self.process.wait(timeout=5)
            raise SandboxError(f"your code ended the grading process ({_exit_reason(status)})")
        if not isinstance(answer, dict) or not ({"ok", "error"} & set(answer)):
            raise SandboxError("the grading process answered nonsense: does your code write "
                               "to file descriptors it did not open?")
        return answer

    def resolve(self, number: int, kind: str) -> RemoteObject:
        return RemoteObject(self, self.generation, number, kind)

    def start(self) -> None:
        self.stop()
        self.generation += 1
        self.folder = Path(tempfile.mkdtemp(prefix="sealed-"))
        copy = self.folder / "submission"
        shutil.copytree(self.submission, copy, symlinks=False,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(HERE / "sandbox_child.py", self.folder / "sandbox_child.py")
        if self.isolation == "process":  # the repository's root must not be on sys.path
            for source, name in ((LIBRARY, LIBRARY.name), (PROBES, PROBE_PACKAGE)):
                if source.is_dir():
                    shutil.copytree(source, self.folder / "lib" / name,
                                    ignore=shutil.ignore_patterns("__pycache__"))
        to_child, requests = os.pipe()
        answers, from_child = os.pipe()
        self.pids = pids_cgroup(self.limits.processes, self.generation)
        self.process = subprocess.Popen(
            self.command(), cwd=self.folder, env=self.environment((to_child, from_child)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_child, from_child), start_new_session=True,
            preexec_fn=self.apply_limits)
        os.close(to_child)
        os.close(from_child)
        self.requests = os.fdopen(requests, "wb")
        self.answers = os.fdopen(answers, "rb", buffering=0)

    def command(self) -> list[str]:
        """The child's command line: the server script, inside bubblewrap when there is one."""
        if self.isolation == "process":
            return [sys.executable, "-I", str(self.folder / "sandbox_child.py")]
        mounts = [(path, path) for path in sorted({"/usr", "/lib", "/lib64", "/bin", "/sbin",
                                                   "/etc", sys.base_prefix, sys.prefix})
                  if Path(path).exists()]
        for source, name in ((LIBRARY, LIBRARY.name), (PROBES, PROBE_PACKAGE)):
            if source.is_dir():
                mounts.append((str(source), str(MOUNT / "lib" / name)))
        mounts += [(str(self.folder / "submission"), str(MOUNT / "submission")),
                   (str(self.folder / "sandbox_child.py"), str(MOUNT / "child.py"))]
        # /tmp first: a tmpfs mounted after the binds would hide any of them that lives under
        # /tmp (a clone of the course in /tmp, its .venv included).
        return [BWRAP, "--tmpfs", "/tmp", *self.bind(mounts),
                "--bind", str(self.exchange), str(self.exchange),
                "--proc", "/proc", "--dev", "/dev",
                "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                "--cap-drop", "ALL", "--die-with-parent", "--new-session",
                "--chdir", str(MOUNT / "submission"),
                sys.executable, "-I", str(MOUNT / "child.py")]

    def bind(self, mounts: list[tuple[str, str]]) -> list[str]:
        return [arg for source, dest in mounts for arg in ("--ro-bind", source, dest)]

    def environment(self, fds: tuple[int, int]) -> dict[str, str]:
        """A clean environment: nothing in it says where the grader keeps anything."""
        inside = MOUNT if self.isolation == "bubblewrap" else self.folder
        return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "GRADING_FDS": f"{fds[0]},{fds[1]}",
                "GRADING_SUBMISSION": str(inside / "submission"),
                "GRADING_LIBRARY": str(inside / "lib"),
                "GRADING_CLOSED": json.dumps(CLOSED)}

    def apply_limits(self) -> None:
        """Runs in the child before exec: its resource limits, inherited by all it starts.

        The CPU limit's soft value sends SIGXCPU, which says why; the hard one kills.
        """
        for kind, soft, hard in ((resource.RLIMIT_CPU, self.limits.cpu_s, self.limits.cpu_s + 1),
                                 (resource.RLIMIT_AS, self.limits.memory_bytes, None),
                                 (resource.RLIMIT_NPROC, self.limits.processes, None),
                                 (resource.RLIMIT_FSIZE, self.limits.file_bytes, None),
                                 (resource.RLIMIT_CORE, 0, None)):
            resource.setrlimit(kind, (soft, soft if hard is None else hard))
        if self.pids is not None:
            (self.pids / "cgroup.procs").write_text(str(os.getpid()))

    @property
    def exchange(self) -> Path:
        """A folder the child may write to, at the same path inside as outside.

        Files cross through it: the grader puts there what the student's code must read (a
        model file) and the student's code writes there what the grader inspects (an export).
        It outlives restarts of the child; ``close`` removes it. Read what comes back with
        ``received``, never by following a path the child chose.
        """
        if self._exchange is None:
            self._exchange = Path(tempfile.mkdtemp(prefix="sealed-exchange-")).resolve()
        return self._exchange

    def received(self, path: object) -> Path:
        """``path``, a file the child says it wrote, once checked to be a plain file in the
        exchange folder (not a link to something the child could not read itself)."""
        if not isinstance(path, (str, PurePath)):
            raise SandboxError(f"a path was expected, not a {type(path).__name__}")
        candidate = Path(os.path.normpath(path))  # no "..": no link on the way is allowed
        inside = self.exchange in candidate.parents
        if not inside or candidate.is_symlink() or not candidate.is_file():
            raise SandboxError(f"{candidate.name} is not a file written where it was asked")
        if any(part.is_symlink() for part in candidate.parents if self.exchange in part.parents):
            raise SandboxError(f"{candidate.name} is not a file written where it was asked")
        return candidate

    def close(self) -> None:
        """Stop the child and remove the exchange folder: this sandbox is done."""
        self.stop()
        if self._exchange is not None:
            shutil.rmtree(self._exchange, ignore_errors=True)
            self._exchange = None

    def stop(self) -> None:
        """Kill the child's whole process group, and forget its folder and handles."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            for stream in (self.requests, self.answers):
                with contextlib.suppress(OSError):
                    stream.close()
            self.process = None
        if self.pids is not None:
            remove_cgroup(self.pids)
            self.pids = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def pids_cgroup(limit: int, generation: int) -> Path | None:
    """A cgroup capping the child's processes, when the process limit needs one.

    The kernel exempts root's processes from RLIMIT_NPROC, and bubblewrap started by root maps
    the sandbox's user to root outside. So when grading runs as root (a container), a child is
    capped by the cgroup ``pids`` controller instead, where this machine offers it.
    """
    if os.geteuid() != 0 or not (PIDS / "cgroup.procs").is_file():
        return None
    group = PIDS / f"grading-{os.getpid()}-{generation}"
    try:
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(str(limit))
    except OSError:
        return None
    return group


def remove_cgroup(group: Path) -> None:
    """Remove an emptied cgroup; its last processes may take a moment to leave."""
    for _ in range(50):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def process_limit() -> str:
    """How this machine caps a child's processes: rlimit, cgroup, or none (say so in reports)."""
    if os.geteuid() != 0:
        return "rlimit"
    return "cgroup" if (PIDS / "cgroup.procs").is_file() else "none"


class RemoteObject:
    """An object that lives in the sandbox: its attributes and calls are asked for there."""

    def __init__(self, sandbox: Sandbox, generation: int, number: int, kind: str):
        object.__setattr__(self, "_where", (sandbox, generation, number, kind))
        object.__setattr__(self, "_module", None)

    def _ask(self, message: dict) -> object:
        sandbox, generation, number, _ = self._where
        if generation != sandbox.generation or sandbox.process is None:
            if self._module is None:
                raise SandboxError("the grading process was restarted after an earlier failure")
            object.__setattr__(self, "_where", sandbox.module(self._module)._where)
            number = self._where[2]
        return sandbox.request({**message, "id": number}, sandbox.limits.call_s)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ask({"op": "getattr", "name": name})

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._ask({"op": "call", "args": encode(list(args), _refuse),
                          "kwargs": encode(kwargs, _refuse)})

    def __repr__(self) -> str:
        return f"<sandboxed {self._where[3]}>"


def _refuse(value: object):
    """Arguments must be plain data or handles of the same sandbox."""
    if isinstance(value, RemoteObject):
        return sandbox_child.Handle(value._where[2], value._where[3])
    raise TypeError(f"a {type(value).__name__} cannot be sent to the sandbox: send plain data")


def remote_exception(error: dict) -> Exception:
    """The child's exception, as the same built-in type where there is one (for pytest.raises)."""
    kind, message = str(error.get("type", "Exception")), str(error.get("message", ""))
    builtin = getattr(builtins, kind, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin not in (
            SystemExit, KeyboardInterrupt):
        try:
            raised = builtin(message)
        except Exception:  # an exception type whose constructor wants other arguments
            raised = RemoteError(kind, message)
    else:
        raised = RemoteError(kind, message)
    raised.student_frames = [tuple(frame) for frame in error.get("frames", [])][-5:]
    return raised


def _exit_reason(status: int) -> str:
    if status > 128:  # bubblewrap reports a child killed by a signal as 128 + its number
        status = 128 - status
    if status < 0:
        name = signal.Signals(-status).name
        hints = {"SIGXCPU": "it used more CPU time than allowed",
                 "SIGKILL": "it was killed, often for using too much memory"}
        return f"{name}: {hints.get(name, 'a signal stopped it')}"
    return f"exit status {status}"


class _Deadline:
    """A binary stream whose reads give up at ``deadline``, so a half-sent frame cannot hang."""

    def __init__(self, stream, deadline: float):
        self.stream, self.deadline = stream, deadline

    def read(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.stream], [], [], remaining)[0]:
                raise SandboxError("Timed out while the grading process was answering")
            chunk = self.stream.read(min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
