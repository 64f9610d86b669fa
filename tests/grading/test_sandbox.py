"""Attacks from inside the sandbox: each is a function of a fake submission, proven blocked.

Every test names the defence it proves. Where removing that defence is safe to try here (the
mount namespace, the PID namespace), a control test runs the same attack without it and shows
that it then succeeds, so the test is known to bite.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.sandbox import Limits, Sandbox, SandboxError, process_limit

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "ch15_capstone.py"
HIDDEN = ROOT / "autograder" / "hidden" / "ch10_errors_test.yml"
ORPHAN = "1234.5"  # a sleep nobody else runs, so that its processes can be found in /proc

ATTACKS = textwrap.dedent(f"""
    import os, signal, subprocess, time
    import numpy

    def import_solutions():
        from solutions.ch15_capstone import summarise
        return "imported"

    def read(path):
        with open(path) as handle:
            return handle.read()

    def leak_withheld():
        raise ValueError(read({str(HIDDEN)!r}))

    def environment():
        return dict(os.environ)

    def vandalise(path):
        with open(path, "a") as handle:
            handle.write("# the Count was here")
        return "written"

    def sleep_past_the_deadline():
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.alarm(0)
        for number in range(1, 32):
            if number not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(number, signal.SIG_IGN)
                except (OSError, ValueError):
                    pass
        time.sleep(120)
        return "slept"

    def spin():
        while True:
            pass

    def hog(gib):
        return len(bytearray(gib * 2**30))

    def fork_bomb(n):
        started = []
        for _ in range(n):
            try:
                started.append(subprocess.Popen(["sleep", "30"]))
            except OSError:
                break
        return len(started)

    def orphan():
        subprocess.Popen(["sleep", "{ORPHAN}"], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        return "left behind"

    def patch_numpy():
        numpy.percentile = lambda *args, **kwargs: 0.0
        return numpy.percentile([1.0, 2.0, 3.0], 50)

    def garble():
        os.write(int(os.environ["GRADING_FDS"].split(",")[1]), b"\\xff" * 64)
        time.sleep(5)

    def die():
        os._exit(0)

    def fine():
        return "fine"

    def write(path, text):
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def link(target, path):
        os.symlink(target, path)
        return path
""")

needs_bwrap = pytest.mark.usefixtures("bwrap_installed")


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "attacks.py").write_text(ATTACKS)
    return folder


@pytest.fixture
def sealed(submission: Path):
    sandbox = Sandbox(submission, Limits(call_s=3, cpu_s=2, memory_bytes=2 * 2**30,
                                         processes=24))
    yield sandbox
    sandbox.close()


def attacks(sandbox: Sandbox):
    return sandbox.module("attacks")


def orphans() -> list[int]:
    """The processes still running ``sleep ORPHAN`` anywhere on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if command[:2] == [b"sleep", ORPHAN.encode()]:
                found.append(int(entry.name))
    return found


@needs_bwrap
def test_the_reference_answers_cannot_be_imported(sealed):
    """Defence: the repository's root is on neither sys.path nor the child's filesystem."""
    with pytest.raises(ModuleNotFoundError):
        attacks(sealed).import_solutions()


@needs_bwrap
@pytest.mark.parametrize("path", [SOLUTION, HIDDEN, "../solutions/ch15_capstone.py"])
def test_the_answers_and_withheld_cases_cannot_be_read(sealed, path):
    """Defence: bubblewrap mounts neither the repository nor the withheld cases."""
    with pytest.raises(OSError):
        attacks(sealed).read(str(path))


def test_without_the_mount_namespace_the_answers_are_readable(submission):
    """Control: the same attack succeeds in a child without bubblewrap."""
    sandbox = Sandbox(submission, isolation="process")
    try:
        assert "def summarise" in attacks(sandbox).read(str(SOLUTION))
    finally:
        sandbox.close()


@needs_bwrap
def test_withheld_cases_never_reach_the_feedback(sealed):
    """Defence: what the student's code cannot read, its exceptions cannot quote."""
    with pytest.raises(OSError) as raised:
        attacks(sealed).leak_withheld()
    assert HIDDEN.read_text()[:40] not in str(raised.value)


@needs_bwrap
def test_the_environment_names_no_folder_of_the_grader(sealed):
    """Defence: the child starts with a clean environment."""
    values = " ".join(attacks(sealed).environment().values())
    assert str(ROOT) not in values and "/work" not in values


@needs_bwrap
def test_the_autograder_cannot_be_rewritten(sealed):
    """Defence: the autograder is not mounted; the submission is a read-only copy."""
    target = ROOT / "autograder" / "test_ch15_capstone.py"
    before = target.read_text()
    for path in (target, "attacks.py"):
        with pytest.raises(OSError):
            attacks(sealed).vandalise(str(path))
    assert target.read_text() == before


def test_the_deadline_cannot_be_switched_off(sealed):
    """Defence: the grader keeps the deadline and kills the child; signals inside change nothing."""
    module, start = attacks(sealed), time.monotonic()
    with pytest.raises(SandboxError, match="Timed out after 3 s"):
        module.sleep_past_the_deadline()
    assert time.monotonic() - start < 10
    assert module.fine() == "fine", "the next call gets a fresh child, the module re-imported"


def test_cpu_time_is_limited(submission):
    """Defence: RLIMIT_CPU stops a busy loop even when the wall-clock deadline is far away."""
    sandbox = Sandbox(submission, Limits(call_s=30, cpu_s=1))
    try:
        with pytest.raises(SandboxError, match="CPU time"):
            attacks(sandbox).spin()
    finally:
        sandbox.close()


def test_memory_is_limited(sealed):
    """Defence: RLIMIT_AS turns a 4 GiB allocation into a MemoryError, and grading goes on."""
    with pytest.raises(MemoryError):
        attacks(sealed).hog(4)
    assert attacks(sealed).fine() == "fine"


@pytest.mark.skipif(process_limit() == "none",
                    reason="running as root without a cgroup pids controller: no process cap")
def test_a_fork_bomb_hits_the_process_limit(sealed):
    """Defence: RLIMIT_NPROC (or, for root, a pids cgroup) caps the child's tasks."""
    started = attacks(sealed).fork_bomb(200)
    assert started < 24, f"{started} processes were started under a limit of 24"


@needs_bwrap
def test_no_process_outlives_its_grading(sealed):
    """Defence: the PID namespace dies with the child, taking a process that left the group."""
    assert attacks(sealed).orphan() == "left behind"
    sealed.close()
    deadline = time.monotonic() + 5
    while orphans() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert orphans() == []


def test_without_the_pid_namespace_an_orphan_survives(submission):
    """Control: a new session escapes a process-group kill when there is no PID namespace."""
    sandbox = Sandbox(submission, isolation="process")
    try:
        attacks(sandbox).orphan()
    finally:
        sandbox.close()
    survivors = orphans()
    for pid in survivors:
        os.kill(pid, 9)
    assert survivors, "the control should leave an orphan behind"


def test_monkeypatching_numpy_changes_only_the_child(sealed):
    """Defence: expected values are computed in the grader's process, whose numpy is its own."""
    assert attacks(sealed).patch_numpy() == 0.0
    assert np.percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_garbage_on_the_answer_channel_fails_that_call_only(sealed):
    """Defence: the grader reads only well-formed frames, and restarts a child that garbles."""
    with pytest.raises(SandboxError):
        attacks(sealed).garble()
    assert attacks(sealed).fine() == "fine"


def test_a_child_that_exits_fails_that_call_only(sealed):
    """Defence: an exit inside the child is a failed call, not a stopped grading run."""
    with pytest.raises(SandboxError, match="ended the grading process"):
        attacks(sealed).die()
    assert attacks(sealed).fine() == "fine"


def test_files_cross_through_the_exchange_folder(sealed):
    """The exchange folder is the one place both sides see: what the child writes there the
    grader reads, at the same path."""
    written = attacks(sealed).write(sealed.exchange / "export.onnx", "graph")
    assert sealed.received(written).read_text() == "graph"


@pytest.mark.parametrize("target", [SOLUTION, HIDDEN])
def test_a_link_out_of_the_exchange_folder_is_refused(sealed, target):
    """Defence: the grader refuses a 'file' the child made as a link to one it cannot read."""
    made = attacks(sealed).link(str(target), str(sealed.exchange / "export.onnx"))
    with pytest.raises(SandboxError):
        sealed.received(made)


@pytest.mark.parametrize("elsewhere", [str(SOLUTION), "/etc/passwd", "../../etc/passwd"])
def test_a_path_outside_the_exchange_folder_is_refused(sealed, elsewhere):
    """Defence: a path the child returns is read only inside the exchange folder."""
    with pytest.raises(SandboxError):
        sealed.received(sealed.exchange / elsewhere)


@needs_bwrap
def test_the_child_sees_its_python_when_the_course_lives_under_tmp(submission):
    """bubblewrap's /tmp is a fresh tmpfs: mounted after the binds, it would hide a .venv there."""
    sandbox = Sandbox(submission)
    sandbox.start()
    try:
        command = sandbox.command()
    finally:
        sandbox.close()
    first_bind = command.index("--ro-bind")
    assert command.index("--tmpfs") < first_bind
    assert command[command.index("--tmpfs") + 1] == "/tmp"


CLOSED_IMPORTS = textwrap.dedent("""
    import importlib

    def statement():
        import vampire_detector.drift
        return "imported"

    def from_package():
        from vampire_detector import drift
        return "imported"

    def from_module():
        from vampire_detector.drift import psi
        return "imported"

    def by_importlib():
        importlib.import_module("vampire_detector.drift")
        return "imported"

    def by_exec():
        exec("import vampire_detector.drift", {})
        return "imported"

    def open_module():
        from vampire_detector import images
        return "imported"
""")


@pytest.mark.parametrize("way", ["statement", "from_package", "from_module", "by_importlib",
                                 "by_exec"])
def test_a_chapter_cannot_import_the_library_copy_of_its_answer(tmp_path, monkeypatch, way):
    """The library's answer to an exercise is closed to that chapter's file, however imported;
    the same import from another chapter's file, and the library's other modules, stay open."""
    monkeypatch.setattr("autograder.sandbox.CLOSED", {"ch99_closed": {"vampire_detector.drift":
                                                                       "99.1"}})
    for name in ("ch99_closed", "ch98_open"):
        (tmp_path / f"{name}.py").write_text(CLOSED_IMPORTS)
    sandbox = Sandbox(tmp_path, Limits(call_s=20))
    try:
        closed, other = sandbox.module("ch99_closed"), sandbox.module("ch98_open")
        with pytest.raises(ImportError, match=r"Exercise 99\.1.*write it yourself"):
            getattr(closed, way)()
        assert closed.open_module() == "imported"
        assert getattr(other, way)() == "imported"
    finally:
        sandbox.close()
