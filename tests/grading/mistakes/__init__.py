"""Plausible wrong answers, one reference solution edited per mistake, that the grader must catch.

Each chapter's module here (``chNN.py``) lists its ``MISTAKES``: what a student would plausibly
write wrong for an exercise, as a small edit of the reference answer (a function redefined after
it, or a line replaced), and words its feedback must contain so that the student learns what is
wrong. ``tests/grading/test_mistakes.py`` grades every one of them and fails when a mistake
scores full marks, is caught only by a timeout, or is caught with feedback that does not say
what is wrong. The autograder's test modules list the same mistakes in their docstrings.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    """One wrong answer to one exercise.

    ``append`` is code added at the end of the graded file (it redefines what the mistake
    changes); ``replace`` holds ``(old, new)`` pairs, each ``old`` found exactly once in the
    reference. ``file`` is the graded file, relative to solutions/ (default: the chapter's
    module). ``says``: words (case-insensitive) that the failing test's feedback must contain.
    """

    name: str
    exercise: str
    says: str
    append: str = ""
    replace: tuple[tuple[str, str], ...] = ()
    file: str = ""

    @property
    def chapter(self) -> int:
        return int(self.exercise.split(".")[0])


def all_mistakes() -> list[Mistake]:
    """Every chapter's mistakes, in chapter order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("ch"):
            found.extend(importlib.import_module(f"{__name__}.{info.name}").MISTAKES)
    return found
