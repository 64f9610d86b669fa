"""The student edition works on its own: its README, its Makefile and a bare ``pytest``.

The commands run in a release written to a temporary folder, with this environment standing in
for the one ``make env`` would install (``VENV=``, its install stamp taken as up to date).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.conftest import DEFAULT_TIMEOUT_S
from tools import check_student_edition, student_release

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
STUDENTS = "van-helsing/night-school"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("edition") / "release"
    assert student_release.make_release(ROOT, folder, STUDENTS) == []
    return folder


@pytest.fixture
def copy(release: Path, tmp_path: Path) -> Path:
    """A release of this test's own, to answer in or to trim."""
    return Path(shutil.copytree(release, tmp_path / "students", symlinks=True))


def run(copy: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTEST_ADDOPTS": "-p no:cacheprovider"}
    return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                          timeout=240)


def make(copy: Path, *targets: str) -> subprocess.CompletedProcess:
    return run(copy, "make", "-o", f"{VENV}/.installed", f"VENV={VENV}", *targets)


def test_readme_is_the_students_own(release):
    readme = (release / "README.md").read_text()
    assert f"git clone https://github.com/{STUDENTS}.git && cd night-school" in readme
    assert check_student_edition.readme_commands(readme) == [
        "make env", "make grade CHAPTER=1", "make grade", "make book"]
    assert "`exercises/ch07_docker/gatehouse/.dockerignore` (a dot-file" in readme
    for instructors_only in ("solutions/", "tools/", "tests/", "--impl", "make test", "@"):
        assert instructors_only not in readme, f"the student README mentions {instructors_only}"
    assert f"stopped after\n{DEFAULT_TIMEOUT_S} seconds" in readme


def test_links_point_at_the_students_repository(release):
    assert f"url: https://github.com/{STUDENTS}" in (release / "_config.yml").read_text()
    assert "castle-dracula/deploying-pytorch" not in (release / "book/00_welcome.md").read_text()


def test_bare_pytest_grades_the_exercises_with_the_stated_timeout(copy):
    for module in (copy / "autograder").glob("test_ch*.py"):
        if module.name != "test_ch01_detector.py":
            module.unlink()  # one chapter keeps the test quick
    done = run(copy, str(VENV / "bin" / "pytest"))
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"timeout: {DEFAULT_TIMEOUT_S:.1f}s" in done.stdout
    assert re.search(r"Chapter 1 .*\n(Total)\s+0/\d+\s+0/\d+", done.stdout), done.stdout[-2000:]


def test_makefile_targets_work_on_the_stubs(copy):
    assert make(copy, "help").returncode == 0
    graded = make(copy, "grade", "CHAPTER=1")
    assert graded.returncode == 2 and "not implemented yet" in graded.stdout
    assert re.search(r"\nTotal\s+0/\d+\s+0/\d+", graded.stdout), graded.stdout[-2000:]
    missing = make(copy, "grade", "CHAPTER=99")
    assert missing.returncode == 2 and "no tests for chapter 99" in missing.stdout
    assert make(copy, "lint").returncode == 0
    book = make(copy, "-n", "book")
    assert book.returncode == 0 and "jupyter-book build" in book.stdout
    assert make(copy, "clean").returncode == 0


def test_reference_answers_pasted_in_score_full_marks(copy):
    shutil.copy2(ROOT / "solutions" / "ch01_detector.py", copy / "exercises" / "ch01_detector.py")
    graded = make(copy, "grade", "CHAPTER=01")
    assert graded.returncode == 0, graded.stdout[-2000:]
    total = re.search(r"\nTotal\s+(\d+)/(\d+)\s+(\S+)/(\S+)", graded.stdout)
    assert total and total[1] == total[2] and total[3] == total[4], graded.stdout[-2000:]


def outcome(tests: list[dict], returncode: int) -> check_student_edition.Outcome:
    score = sum(test["score"] for test in tests)
    return check_student_edition.Outcome("make grade", returncode, "Total ...",
                                         {"score": score, "tests": tests})


def graded(status: str, score: float, output: str = "") -> dict:
    return {"name": "Chapter 1: 1.1 a test", "status": status, "score": score,
            "max_score": 2.0, "output": output}


def test_check_tells_a_scoring_stub_and_a_failing_reference():
    withheld = graded("failed", 0, "skipped: graded by your instructor")
    assert check_student_edition.problems(outcome([graded("failed", 0), withheld], 2), False) == []
    assert check_student_edition.problems(outcome([graded("passed", 2), withheld], 0), True) == []
    stub = check_student_edition.problems(outcome([graded("passed", 2)], 0), False)
    assert stub == ["stubs: make grade: the stubs scored 2, not 0",
                    "stubs: make grade: exit status 0, expected 2"]
    reference = check_student_edition.problems(outcome([graded("failed", 0)], 2), True)
    assert reference[0].startswith("reference: make grade: scored 0/2, not full marks")
