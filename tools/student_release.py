"""Write the students' copy of the course: everything but the answers and the hidden tests.

    python tools/student_release.py ../deploying-pytorch-students [--repository school/students]

The release holds the files git tracks, less what only instructors use: solutions/, the hidden
tests (autograder/hidden/), the project's own tests and tools, and the CI that grades solutions/.
Its README, Makefile and pytest configuration are the students' own (tools/student_edition/):
the instructors' ones name stages and folders the release does not have. Its links point at the
students' repository, ``--repository``, by default the one _config.yml names. It is then checked:
no solution marker and no run of solution lines may appear anywhere in it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.conftest import DEFAULT_TIMEOUT_S  # noqa: E402
from tools.make_exercises import BEGIN, END, hint_lines  # noqa: E402
from tools.retarget import SLUG, current_target, replacements, rewrite  # noqa: E402

WITHHELD = ("solutions/", "autograder/hidden/", "tests/", "tools/", ".ci/",
            ".github/workflows/ci.yml")
WINDOW = 3  # this many consecutive solution lines found together count as a leak
EDITION = ROOT / "tools" / "student_edition"
PYTEST_SECTION = re.compile(r"^\[tool\.pytest\.ini_options\]\n(?:(?!\[).*\n?)*", re.MULTILINE)
STUDENT_PYTEST = f"""[tool.pytest.ini_options]
# `pytest` with no arguments grades your answers in exercises/.
testpaths = ["autograder"]
pythonpath = ["."]
addopts = "-ra"
timeout = {DEFAULT_TIMEOUT_S}
"""


def release_files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return [name for name in listed
            if name and not name.startswith(WITHHELD) and (root / name).is_file()]


def _code_lines(lines: list[str]) -> list[str]:
    """Lines that carry code: no blanks, no hints (students get those anyway)."""
    hints = set(hint_lines(lines))
    return [line.strip() for line in lines if line.strip() and line not in hints]


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


def exercise_files(exercises: Path) -> list[str]:
    """The files a student answers in, dot-files (hidden by ``ls``) pointed out."""
    files = []
    for path in sorted(exercises.rglob("*")):
        if path.is_file() and path.name != "__init__.py" and "__pycache__" not in path.parts:
            name = path.relative_to(exercises.parent).as_posix()
            dot = " (a dot-file: `ls -a` shows it)" if path.name.startswith(".") else ""
            files.append(f"- `{name}`{dot}")
    return files


def student_readme(template: str, repository: str, exercises: Path) -> str:
    """The students' README: their repository, their exercise files, the grader's time limit."""
    owner, name = repository.split("/")
    fields = {"@REPOSITORY@": repository, "@NAME@": name,
              "@BOOK@": f"https://{owner}.github.io/{name}/",
              "@TIMEOUT@": str(DEFAULT_TIMEOUT_S),
              "@EXERCISE_FILES@": "\n".join(exercise_files(exercises))}
    for field, value in fields.items():
        template = template.replace(field, value)
    return template


def student_pyproject(text: str) -> str:
    """The package as it is, with a pytest section for grading: a bare ``pytest`` grades, and
    its header states the same time limit per test as the grader and the README."""
    if not PYTEST_SECTION.search(text):
        raise ValueError("pyproject.toml has no [tool.pytest.ini_options] section to replace")
    return PYTEST_SECTION.sub(STUDENT_PYTEST, text, count=1)


def point_at(out: Path, root: Path, repository: str) -> None:
    """Rewrite the release's links (book buttons, badges, clone URLs) for ``repository``."""
    old, branch = current_target(root)
    rewrite(out.rglob("*"), replacements(old, repository, branch, branch))


def make_release(root: Path, out: Path, repository: str | None = None) -> list[str]:
    """Copy the release into ``out`` (which must not exist yet); return what leaked, if anything."""
    if out.exists():
        raise FileExistsError(f"{out} already exists: choose a new folder")
    repository = repository or current_target(root)[0]
    if not SLUG.match(repository):
        raise ValueError(f"{repository!r} is not a GitHub repository: write it as owner/name")
    for name in release_files(root):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, out / name)
    point_at(out, root, repository)
    shutil.copy2(EDITION / "Makefile", out / "Makefile")
    (out / "README.md").write_text(student_readme((EDITION / "README.md").read_text(),
                                                  repository, out / "exercises"))
    (out / "pyproject.toml").write_text(student_pyproject((root / "pyproject.toml").read_text()))
    return leaks(out, root / "solutions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a new folder for the students' copy")
    parser.add_argument("--repository", default=None,
                        help="the students' repository as owner/name, where they clone from "
                             "(default: the one _config.yml names)")
    args = parser.parse_args(argv)
    try:
        found = make_release(ROOT, args.out, args.repository)
    except (FileExistsError, ValueError, subprocess.CalledProcessError) as error:
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
