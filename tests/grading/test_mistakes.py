"""Every documented wrong answer is caught by its exercise's tests, with words that say what is
wrong, in seconds (a timeout is not a catch). See ``tests/grading/mistakes/``.

Run by ``make mistakes`` (one grading run per mistake), not by ``make unit``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.grading.mistakes import Mistake, all_mistakes

ROOT = Path(__file__).resolve().parents[2]
QUICKLY_S = 60  # a whole grading run of one exercise, sandbox start included, on a busy laptop
MISTAKES = all_mistakes()
# "ch10-10.3-log10": select a chapter's mistakes with -k ch10, an exercise's with -k 10.3
IDS = [f"ch{m.chapter:02d}-{m.exercise}-{m.name}" for m in MISTAKES]


def graded_file(mistake: Mistake) -> str:
    if mistake.file:
        return mistake.file
    (module,) = (ROOT / "solutions").glob(f"ch{mistake.chapter:02d}_*.py")
    return module.name


def chapter_test_files(chapter: int) -> list[Path]:
    return sorted((ROOT / "autograder").glob(f"test_ch{chapter:02d}_*.py"))


def make_wrong(mistake: Mistake, folder: Path) -> Path:
    """A copy of solutions/ with the mistake made in it."""
    target = folder / "submission"
    shutil.copytree(ROOT / "solutions", target, ignore=shutil.ignore_patterns("__pycache__"))
    path = target / graded_file(mistake)
    text = path.read_text()
    for old, new in mistake.replace:
        assert text.count(old) == 1, f"{mistake.name}: {old!r} is not in {path.name} exactly once"
        text = text.replace(old, new)
    path.write_text(text + ("\n" + mistake.append if mistake.append else ""))
    return target


def grade(submission: Path, mistake: Mistake, out: Path) -> tuple[list[dict], float]:
    command = [sys.executable, "-m", "pytest", *map(str, chapter_test_files(mistake.chapter)),
               f"--impl={submission}", "--exercise", mistake.exercise, "--gradescope", str(out),
               "-q", "-p", "no:cacheprovider", "-p", "pytest_timeout"]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    seconds = time.perf_counter() - started
    assert out.is_file(), f"the grading run wrote no results:\n{run.stdout[-3000:]}"
    return json.loads(out.read_text())["tests"], seconds


@pytest.mark.usefixtures("bwrap_installed")
@pytest.mark.parametrize("mistake", MISTAKES, ids=IDS)
def test_the_mistake_is_caught_quickly_with_a_reason(mistake: Mistake, tmp_path):
    tests, seconds = grade(make_wrong(mistake, tmp_path), mistake, tmp_path / "results.json")
    assert tests, f"no test grades Exercise {mistake.exercise}"
    failed = [test for test in tests if test["score"] < test["max_score"]]
    assert failed, f"{mistake.name} scores full marks on Exercise {mistake.exercise}"
    outputs = [test["output"] for test in failed]
    assert not any(output.startswith("Timed out") for output in outputs), (
        f"{mistake.name} is caught only by a timeout")
    assert any(mistake.says.lower() in output.lower() for output in outputs), (
        f"no feedback on {mistake.name} says {mistake.says!r}; it says:\n" + "\n".join(outputs))
    assert seconds < QUICKLY_S, f"grading {mistake.name} took {seconds:.0f} s"


def test_every_mistake_is_documented_where_students_and_instructors_read_tests():
    """Each mistake's name appears in its chapter's test module docstring."""
    undocumented = []
    for mistake in MISTAKES:
        docs = " ".join(ast.get_docstring(ast.parse(path.read_text())) or ""
                        for path in chapter_test_files(mistake.chapter))
        if mistake.name not in docs:
            undocumented.append(mistake.name)
    assert not undocumented, f"not in their test module's docstring: {undocumented}"


def test_mistake_names_are_unique_within_an_exercise():
    """One name per wrong answer to an exercise; ``copies-the-library`` recurs across them."""
    assert len(IDS) == len(set(IDS))
