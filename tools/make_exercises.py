"""Write exercises/ from solutions/, turning every solution region into a stub.

    python tools/make_exercises.py           # regenerate exercises/
    python tools/make_exercises.py --check   # exit 1 if exercises/ is not what it would write

solutions/ is the single source of every exercise. In it, the lines between ``# BEGIN SOLUTION``
and ``# END SOLUTION`` are the answer. A region belongs to the nearest exercise *title* above
it, an "Exercise N.M:" with its colon (a docstring's first line, a comment heading); a mention
without the colon, such as "your read_portrait (Exercise 6.1)", only points elsewhere and names
nothing. In the stub, a Python region becomes a ``raise NotImplementedError`` naming the
exercise, any other file gets a TODO comment, and hints survive in both: a comment starting with
``# Hint`` together with the comment lines right below it, so that a long hint is kept whole.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
HINT = re.compile(r"^\s*# Hint\b")
COMMENT = re.compile(r"^\s*#")
EXERCISE = re.compile(r"Exercise (\d+\.\d+):")
SKIPPED = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}


class MarkerError(ValueError):
    """A solution file whose regions cannot be turned into stubs."""


def hint_lines(lines: list[str]) -> list[str]:
    """The hints among ``lines``: each ``# Hint`` line and the comment lines that continue it.

    A hint wrapped over two lines must reach the student whole, not cut after its first line.
    """
    hints: list[str] = []
    in_hint = False
    for line in lines:
        in_hint = bool(HINT.match(line) or (in_hint and COMMENT.match(line)))
        if in_hint:
            hints.append(line)
    return hints


def stub(indent: str, exercise: str, hints: list[str], path: Path) -> list[str]:
    """The lines that replace one solution region."""
    if path.suffix == ".py":
        where = f"exercises/{path.as_posix()}"
        message = f"Exercise {exercise} is not implemented yet: write it in {where}"
        return [*hints, f"{indent}raise NotImplementedError(", f'{indent}    "{message}")']
    return [f"{indent}# TODO: Exercise {exercise} is not implemented yet.", *hints]


def strip_solutions(text: str, path: Path) -> str:
    """``text`` of the solution file ``path`` (relative to solutions/) with every region stubbed."""
    out: list[str] = []
    exercise = None
    region: list[str] | None = None
    indent = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if region is None:
            if match := BEGIN.match(line):
                if exercise is None:
                    raise MarkerError(f"{path}:{number}: no 'Exercise N.M:' title above this "
                                      "region")
                region, indent = [], match["indent"]
                continue
            if END.match(line):
                raise MarkerError(f"{path}:{number}: END SOLUTION without BEGIN SOLUTION")
            if found := EXERCISE.search(line):
                exercise = found[1]
            out.append(line)
        elif END.match(line):
            out += stub(indent, exercise, hint_lines(region), path)
            region = None
        elif BEGIN.match(line):
            raise MarkerError(f"{path}:{number}: BEGIN SOLUTION inside another region")
        else:
            region.append(line)
    if region is not None:
        raise MarkerError(f"{path}: a BEGIN SOLUTION region is never closed")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def expected_exercises(solutions: Path) -> dict[Path, bytes]:
    """What exercises/ should hold: every file of solutions/, stubbed where it has regions."""
    files = {}
    for path in sorted(solutions.rglob("*")):
        relative = path.relative_to(solutions)
        if path.is_dir() or SKIPPED & set(relative.parts):
            continue
        data = path.read_bytes()
        if b"# BEGIN SOLUTION" in data:
            data = strip_solutions(data.decode(), relative).encode()
        files[relative] = data
    return files


def differences(expected: dict[Path, bytes], exercises: Path) -> list[str]:
    """Files of exercises/ that are missing, stale or edited by hand."""
    actual = {path.relative_to(exercises) for path in exercises.rglob("*")
              if path.is_file() and not SKIPPED & set(path.relative_to(exercises).parts)}
    problems = [f"missing: exercises/{p}" for p in sorted(set(expected) - actual)]
    problems += [f"not in solutions/: exercises/{p}" for p in sorted(actual - set(expected))]
    problems += [f"out of date: exercises/{p}" for p in sorted(actual & set(expected))
                 if (exercises / p).read_bytes() != expected[p]]
    return problems


def unsaved_work(expected: dict[Path, bytes], exercises: Path) -> list[str]:
    """Files that regenerating would overwrite or delete although git does not have them.

    Those may be a student's answers; everything else can be regenerated or restored from git.
    """
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--", str(exercises)],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []  # not a git checkout: nothing to compare with
    risky = []
    for line in status.splitlines():
        path = ROOT / line[3:]
        relative = path.relative_to(exercises)
        if path.is_file() and path.read_bytes() != expected.get(relative):
            risky.append(str(path.relative_to(ROOT)))
    return risky


def write(expected: dict[Path, bytes], exercises: Path) -> None:
    if exercises.exists():
        shutil.rmtree(exercises)
    for relative, data in expected.items():
        (exercises / relative).parent.mkdir(parents=True, exist_ok=True)
        (exercises / relative).write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when exercises/ is out of date")
    parser.add_argument("--force", action="store_true",
                        help="overwrite exercises/ even where it has uncommitted changes")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--exercises", type=Path, default=ROOT / "exercises")
    args = parser.parse_args(argv)
    try:
        expected = expected_exercises(args.solutions)
    except MarkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.check:
        if not args.force and (changed := unsaved_work(expected, args.exercises)):
            print("error: regenerating would overwrite uncommitted changes (your answers?); "
                  "commit them, or pass --force:\n  " + "\n  ".join(changed),
                  file=sys.stderr)
            return 2
        write(expected, args.exercises)
        print(f"wrote {len(expected)} files to {args.exercises}")
        return 0
    problems = differences(expected, args.exercises)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("exercises/ is out of sync with solutions/: run `make exercises`", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
