"""Build the student edition and run its README's commands in it, as a student would.

    python tools/check_student_edition.py [--venv .venv] [--book]

Two fresh releases are written: one as students get it, whose stubs must score 0, and one with
the reference answers pasted over exercises/ (each file of solutions/ copied in), which must
score full marks. In each, every ``make`` command of the README's getting-started block runs, and
``make help``, ``make lint`` and ``make clean`` too. Grading runs write Gradescope's results
(through PYTEST_ADDOPTS, so the commands stay the README's own) and those are checked; cases
kept by the instructor (absent from the release) are neither a pass nor a failure here.

To stay fast the commands reuse an existing environment (``VENV=``, its install stamp taken as
up to date with ``make -o``): ``make env`` finds it ready instead of installing 6 GB again, and
``make book``, which runs every chapter, is only checked with ``make -n`` unless ``--book``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.student_release import make_release  # noqa: E402

COMMANDS = re.compile(r"```bash\n(.*?)```", re.DOTALL)
EXTRA = ["make help", "make lint", "make clean"]


@dataclass
class Outcome:
    """What one command did: its exit status, its output, and the grades it wrote, if any."""

    command: str
    returncode: int
    output: str
    results: dict | None


def readme_commands(readme: str) -> list[str]:
    """The ``make`` commands of the README's first bash block, comments removed."""
    block = COMMANDS.search(readme)
    if block is None:
        return []
    lines = (line.split("#")[0].strip() for line in block[1].splitlines())
    return [line for line in lines if line.startswith("make ")]


def run(command: str, copy: Path, venv: Path, book: bool) -> Outcome:
    """Run one README command in ``copy`` with the environment ``venv`` already in place."""
    words = command.split()
    if words[1:2] == ["book"] and not book:
        words.insert(1, "-n")
    words[1:1] = ["-o", f"{venv}/.installed", f"VENV={venv}"]
    results = copy / "_build" / "check" / "results.json"
    results.unlink(missing_ok=True)
    results.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTEST_ADDOPTS": f"--gradescope {results}"}
    done = subprocess.run(words, cwd=copy, env=env, capture_output=True, text=True)
    graded = json.loads(results.read_text()) if results.is_file() else None
    return Outcome(command, done.returncode, done.stdout + done.stderr, graded)


def withheld(test: dict) -> bool:
    """A case the release does not hold: the instructor grades it."""
    return test["status"] != "passed" and "instructor" in test.get("output", "")


def problems(outcome: Outcome, answered: bool) -> list[str]:
    """What is wrong with one command's outcome, on the stubs or on the reference answers."""
    where = f"{'reference' if answered else 'stubs'}: {outcome.command}"
    if outcome.results is None:
        if outcome.returncode != 0:
            return [f"{where} failed ({outcome.returncode}):\n{outcome.output[-2000:]}"]
        return []
    tests = [test for test in outcome.results["tests"] if not withheld(test)]
    if not tests:
        return [f"{where}: no graded test ran"]
    passed = [test for test in tests if test["status"] == "passed"]
    score, full = outcome.results["score"], sum(test["max_score"] for test in tests)
    found = []
    if answered and (len(passed) < len(tests) or score != full):
        failed = "; ".join(t["name"] for t in tests if t["status"] != "passed")
        found.append(f"{where}: scored {score:g}/{full:g}, not full marks: {failed}")
    if not answered and (passed or score != 0):
        found.append(f"{where}: the stubs scored {score:g}, not 0")
    if "Total" not in outcome.output:
        found.append(f"{where}: no score table in the output")
    expected = 0 if answered else 2  # make exits 2 when pytest reports failing tests
    if outcome.returncode != expected:
        found.append(f"{where}: exit status {outcome.returncode}, expected {expected}")
    return found


def paste_answers(copy: Path, solutions: Path) -> None:
    """Copy every file of ``solutions`` over the release's exercises/, as a student would."""
    for path in solutions.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = copy / "exercises" / path.relative_to(solutions)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def check(root: Path, venv: Path, book: bool = False) -> list[str]:
    """Every problem found in two fresh releases: the stubs, and the reference pasted in."""
    found = []
    with tempfile.TemporaryDirectory(prefix="student-edition-") as tmp:
        for answered in (False, True):
            copy = Path(tmp) / ("answered" if answered else "stubs")
            found += [f"leak: {leak}" for leak in make_release(root, copy)]
            if answered:
                paste_answers(copy, root / "solutions")
            commands = readme_commands((copy / "README.md").read_text())
            if not any(command.startswith("make grade") for command in commands):
                found.append("the student README has no `make grade` command")
            for command in [*commands, *EXTRA]:
                outcome = run(command, copy, venv, book)
                print(f"{'reference' if answered else 'stubs'}: {command}: "
                      f"exit {outcome.returncode}", flush=True)
                found += problems(outcome, answered)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix),
                        help="the installed environment to reuse (default: this Python's)")
    parser.add_argument("--book", action="store_true",
                        help="build the book in both copies too (runs every chapter: slow)")
    args = parser.parse_args(argv)
    found = check(ROOT, args.venv.resolve(), args.book)
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print("the student edition's README commands do what they say")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
