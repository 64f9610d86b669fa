"""Write the students' copy of the course: everything but the answers and the hidden tests.

    python tools/student_release.py ../deploying-pytorch-students

The release holds the files git tracks, less what only instructors use: solutions/, the hidden
tests (autograder/hidden/), the project's own tests and tools, and the CI that grades solutions/.
It is then checked: no solution marker and no run of solution lines may appear anywhere in it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.make_exercises import BEGIN, END, HINT  # noqa: E402

WITHHELD = ("solutions/", "autograder/hidden/", "tests/", "tools/", ".ci/",
            ".github/workflows/ci.yml")
WINDOW = 3  # this many consecutive solution lines found together count as a leak


def release_files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return [name for name in listed
            if name and not name.startswith(WITHHELD) and (root / name).is_file()]


def _code_lines(lines: list[str]) -> list[str]:
    """Lines that carry code: no blanks, no hints (students get those anyway)."""
    return [line.strip() for line in lines if line.strip() and not HINT.match(line)]


def solution_snippets(solutions: Path) -> set[tuple[str, ...]]:
    """Every run of WINDOW consecutive code lines in a solution region (a shorter region whole)."""
    snippets = set()
    for path in solutions.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        region: list[str] | None = None
        for line in path.read_text(errors="ignore").splitlines():
            if BEGIN.match(line):
                region = []
            elif END.match(line) and region is not None:
                code = _code_lines(region)
                size = min(WINDOW, len(code))
                snippets |= {tuple(code[i:i + size]) for i in range(len(code) - size + 1)}
                region = None
            elif region is not None:
                region.append(line)
    return {snippet for snippet in snippets if snippet}


def leaks(release: Path, solutions: Path) -> list[str]:
    """Places in ``release`` where solution markers or solution code appear."""
    snippets = solution_snippets(solutions)
    found = []
    for path in sorted(release.rglob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        name = path.relative_to(release)
        if any(BEGIN.match(line) or END.match(line) for line in text.splitlines()):
            found.append(f"{name}: solution markers")
        code = _code_lines(text.splitlines())
        for size in {len(snippet) for snippet in snippets}:
            windows = {tuple(code[i:i + size]) for i in range(len(code) - size + 1)}
            for snippet in sorted(windows & snippets):
                found.append(f"{name}: solution code: {' / '.join(snippet)}")
    return found


def make_release(root: Path, out: Path) -> list[str]:
    """Copy the release into ``out`` (which must not exist yet); return what leaked, if anything."""
    if out.exists():
        raise FileExistsError(f"{out} already exists: choose a new folder")
    for name in release_files(root):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, out / name)
    return leaks(out, root / "solutions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a new folder for the students' copy")
    args = parser.parse_args(argv)
    try:
        found = make_release(ROOT, args.out)
    except (FileExistsError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for leak in found:
        print(f"LEAK {leak}", file=sys.stderr)
    if found:
        print(f"the release in {args.out} gives answers away: do not publish it", file=sys.stderr)
        return 1
    print(f"wrote the student release to {args.out}; no solution text found in it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
