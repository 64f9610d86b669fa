"""Every documented wrong answer is caught by its exercise's tests, with words that say what is
wrong, in seconds (a timeout is not a catch). See ``tests/grading/mistakes/``.

Run by ``make mistakes``, not by ``make unit``: one grading run per round (the n-th mistake of
every exercise of a chapter at once), and a run of its own for any mistake a round leaves unclear.
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
# "ch10-10.3-log10": a mistake's name for messages and for MISTAKES_K below
IDS = [f"ch{m.chapter:02d}-{m.exercise}-{m.name}" for m in MISTAKES]
NAME = dict(zip(map(id, MISTAKES), IDS, strict=True))


def rounds(mistakes: list[Mistake]) -> list[tuple[str, list[Mistake]]]:
    """The mistakes in grading rounds: round r of a chapter makes the r-th mistake of each of
    its exercises at once, so one grading run checks several exercises' mistakes together."""
    by_exercise: dict[str, list[Mistake]] = {}
    for mistake in mistakes:
        by_exercise.setdefault(mistake.exercise, []).append(mistake)
    found: dict[tuple[int, int], list[Mistake]] = {}
    for exercise_mistakes in by_exercise.values():
        for number, mistake in enumerate(exercise_mistakes):
            found.setdefault((mistake.chapter, number), []).append(mistake)
    return [(f"ch{chapter:02d}-round{number + 1}", group)
            for (chapter, number), group in sorted(found.items())]


def graded_file(mistake: Mistake) -> str:
    if mistake.file:
        return mistake.file
    (module,) = (ROOT / "solutions").glob(f"ch{mistake.chapter:02d}_*.py")
    return module.name


def chapter_test_files(chapter: int) -> list[Path]:
    return sorted((ROOT / "autograder").glob(f"test_ch{chapter:02d}_*.py"))


def make_wrong(mistakes: list[Mistake], folder: Path) -> Path:
    """A copy of solutions/ with the mistakes made in it (each edit found exactly once)."""
    target = folder / "submission"
    shutil.copytree(ROOT / "solutions", target, ignore=shutil.ignore_patterns("__pycache__"))
    for mistake in mistakes:
        path = target / graded_file(mistake)
        text = path.read_text()
        for old, new in mistake.replace:
            assert text.count(old) == 1, (
                f"{NAME[id(mistake)]}: {old!r} is not in {path.name} exactly once")
            text = text.replace(old, new)
        path.write_text(text + ("\n" + mistake.append if mistake.append else ""))
    return target


def grade(submission: Path, mistakes: list[Mistake], out: Path) -> tuple[list[dict], float]:
    exercises = [arg for m in mistakes for arg in ("--exercise", m.exercise)]
    command = [sys.executable, "-m", "pytest", *map(str, chapter_test_files(mistakes[0].chapter)),
               f"--impl={submission}", *exercises, "--gradescope", str(out),
               "-q", "-p", "no:cacheprovider", "-p", "pytest_timeout"]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    seconds = time.perf_counter() - started
    assert out.is_file(), f"the grading run wrote no results:\n{run.stdout[-3000:]}"
    return json.loads(out.read_text())["tests"], seconds


def verdict(mistake: Mistake, tests: list[dict]) -> str | None:
    """Why the grader's feedback on ``mistake`` falls short, or None when it is caught well."""
    own = [test for test in tests if test.get("exercise") == mistake.exercise]
    if not own:
        return f"no test grades Exercise {mistake.exercise}"
    outputs = [test["output"] for test in own if test["score"] < test["max_score"]]
    if not outputs:
        return "it scores full marks"
    if any(output.startswith("Timed out") for output in outputs):
        return "it is caught only by a timeout"
    if not any(mistake.says.lower() in output.lower() for output in outputs):
        return f"no feedback says {mistake.says!r}; it says:\n" + "\n".join(outputs)
    return None


ROUNDS = rounds(MISTAKES)


@pytest.mark.usefixtures("bwrap_installed")
@pytest.mark.parametrize("group", [group for _, group in ROUNDS],
                         ids=[name for name, _ in ROUNDS])
def test_each_mistake_is_caught_quickly_with_a_reason(group: list[Mistake], tmp_path):
    """One grading run per round; a mistake the round does not show caught (another one's edit
    may stand in its way) is graded again on its own, and only that verdict counts."""
    problems = []
    try:
        tests, _ = grade(make_wrong(group, tmp_path / "round"), group, tmp_path / "round.json")
        pending = [mistake for mistake in group if verdict(mistake, tests) is not None]
    except AssertionError:  # edits that overlap, or a round that wrote no results
        pending = list(group)
    for mistake in pending:
        folder = tmp_path / NAME[id(mistake)]
        tests, seconds = grade(make_wrong([mistake], folder), [mistake], folder / "r.json")
        problem = verdict(mistake, tests)
        if problem is None and seconds >= QUICKLY_S:
            problem = f"grading it took {seconds:.0f} s"
        if problem is not None:
            problems.append(f"{NAME[id(mistake)]}: {problem}")
    assert not problems, "\n".join(problems)


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
