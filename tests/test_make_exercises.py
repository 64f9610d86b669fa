import re
from pathlib import Path

import pytest

from tools.make_exercises import (
    ROOT,
    MarkerError,
    differences,
    expected_exercises,
    strip_solutions,
)

SOLUTION = '''\
def add(a, b):
    """Exercise 9.1: add two numbers."""
    # BEGIN SOLUTION
    # Hint: Python has an operator for that.
    total = a + b
    return total
    # END SOLUTION
'''


def test_python_region_becomes_a_raise_that_names_the_exercise():
    stub = strip_solutions(SOLUTION, Path("ch09.py"))
    assert "a + b" not in stub and "BEGIN SOLUTION" not in stub
    assert "# Hint: Python has an operator for that." in stub
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match=r"Exercise 9\.1 is not implemented yet"):
        namespace["add"](1, 2)


def test_other_files_get_a_todo_comment():
    text = ("# Exercise 7.2: the base image\n"
            "# BEGIN SOLUTION\nFROM python:3.11-slim\n# END SOLUTION\n")
    stub = strip_solutions(text, Path("Dockerfile"))
    assert "FROM" not in stub and "# TODO: Exercise 7.2 is not implemented yet." in stub


def test_a_hint_wrapped_over_several_lines_is_kept_whole():
    text = ('def f():\n    """Exercise 3.2: f."""\n    # BEGIN SOLUTION\n'
            "    # Hint: the first line of a long hint goes on\n"
            "    # to a second line, and a third.\n"
            "    # Hint: a second hint.\n"
            "    # an answer's own comment is no hint once code came between\n"
            "    return 1\n    # the reasoning behind the answer\n"
            "    # END SOLUTION\n")
    stub = strip_solutions(text, Path("ch03.py"))
    assert "    # to a second line, and a third.\n    # Hint: a second hint.\n" in stub
    assert "reasoning" not in stub


def test_a_region_is_named_by_the_title_above_not_by_a_mention():
    text = ('def predict():\n    """Exercise 6.4: answer one upload.\n\n'
            '    Check it with your read_portrait (Exercise 6.1).\n    """\n'
            "    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n")
    stub = strip_solutions(text, Path("ch06.py"))
    assert "Exercise 6.4 is not implemented yet" in stub and "6.1 is not" not in stub


def test_every_committed_stub_names_the_exercise_of_its_region():
    """The stub inside each exercise's function names that exercise, not one it mentions."""
    for path in sorted((ROOT / "exercises").glob("*.py")):
        titled = None
        for line in path.read_text().splitlines():
            if title := re.search(r"Exercise (\d+\.\d+):", line):
                titled = title[1]
            if stub := re.search(r"Exercise (\d+\.\d+) is not implemented yet", line):
                assert stub[1] == titled, f"{path.name}: a stub of {titled} names {stub[1]}"


@pytest.mark.parametrize("text, problem", [
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "no 'Exercise N.M:' title"),
    ("# Uses Exercise 1.1.\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "no 'Exercise N.M:'"),
    ("# Exercise 1.1: x\n# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("# Exercise 1.1: x\n# END SOLUTION\n", "without BEGIN"),
    ("# Exercise 1.1: x\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n", "inside another"),
])
def test_malformed_markers_are_reported_with_their_place(text, problem):
    with pytest.raises(MarkerError, match=problem):
        strip_solutions(text, Path("bad.py"))


def test_check_reports_missing_stale_and_edited_files(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    exercises.mkdir()
    (solutions / "ch09.py").write_text(SOLUTION)
    (solutions / "data.txt").write_text("kept as is\n")
    (exercises / "ch09.py").write_text("my answer\n")
    (exercises / "old.py").write_text("\n")
    problems = differences(expected_exercises(solutions), exercises)
    assert problems == ["missing: exercises/data.txt", "not in solutions/: exercises/old.py",
                        "out of date: exercises/ch09.py"]


def test_committed_exercises_are_in_sync():
    assert differences(expected_exercises(ROOT / "solutions"), ROOT / "exercises") == []
