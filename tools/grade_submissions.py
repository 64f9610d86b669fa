"""Grade a folder of student submissions into one CSV and a Gradescope results.json each.

    python tools/grade_submissions.py submissions/ --out grades/
    python tools/grade_submissions.py submissions/ --chapters 3 4   # this week's chapters only

``submissions/`` holds one folder per student, named after the student, containing that
student's chNN_*.py files (directly, or inside an exercises/ folder). Each student is graded in a
separate pytest process, so one submission that crashes or hangs cannot affect another.
Written: ``grades/<student>/results.json`` and ``grades/grades.csv`` (points per chapter, total).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 30 * 60  # per student; each test also has its own timeout


def graded_folder(submission: Path) -> Path:
    """Students hand in either their exercises/ folder or its contents."""
    inner = submission / "exercises"
    return inner if inner.is_dir() else submission


def chapter_tests(chapters: list[int] | None) -> list[Path]:
    """The autograder's test files for ``chapters`` (all of it for None)."""
    if chapters is None:
        return [ROOT / "autograder"]
    found = [sorted((ROOT / "autograder").glob(f"test_ch{number:02d}_*.py")) for number in chapters]
    missing = [number for number, files in zip(chapters, found, strict=True) if not files]
    if missing:
        raise ValueError(f"the autograder has no tests for chapter(s) {missing}")
    return [path for files in found for path in files]


def grade_one(submission: Path, results: Path, tests: list[Path]) -> dict:
    """Run the autograder's ``tests`` on one submission; return its Gradescope results."""
    results.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", *map(str, tests), "-q",
               "-p", "no:cacheprovider", f"--impl={graded_folder(submission)}",
               f"--gradescope={results}"]
    with contextlib.suppress(subprocess.TimeoutExpired):  # reported below: no results
        subprocess.run(command, cwd=ROOT, capture_output=True, timeout=TIME_LIMIT_S)
    if not results.exists():
        return {"score": 0, "tests": [], "output": "grading did not finish"}
    return json.loads(results.read_text())


def chapter_points(results: dict) -> dict[str, float]:
    """Points per chapter; test names start with their chapter's title."""
    points: dict[str, float] = {}
    for test in results["tests"]:
        chapter = test["name"].split(": ", 1)[0]
        points[chapter] = points.get(chapter, 0.0) + test["score"]
    return points


def write_csv(rows: dict[str, dict], path: Path) -> None:
    chapters = sorted({chapter for results in rows.values() for chapter in
                       chapter_points(results)})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *chapters, "total", "out of"])
        for student, results in sorted(rows.items()):
            points = chapter_points(results)
            possible = sum(test["max_score"] for test in results["tests"])
            writer.writerow([student, *(points.get(c, 0) for c in chapters),
                             results["score"], possible])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="a folder with one folder per student")
    parser.add_argument("--out", type=Path, default=Path("grades"),
                        help="where to write the results (default: grades/)")
    parser.add_argument("--chapters", type=int, nargs="+", metavar="N",
                        help="grade only these chapters (default: every chapter)")
    args = parser.parse_args(argv)
    try:
        tests = chapter_tests(args.chapters)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a folder of submissions", file=sys.stderr)
        return 2
    students = sorted(path for path in args.submissions.iterdir() if path.is_dir())
    if not students:
        print(f"error: {args.submissions} has no student folders", file=sys.stderr)
        return 2
    rows = {}
    for submission in students:
        rows[submission.name] = grade_one(submission.resolve(),
                                          (args.out / submission.name / "results.json").resolve(),
                                          tests)
        print(f"{submission.name}: {rows[submission.name]['score']:g} points")
    write_csv(rows, args.out / "grades.csv")
    print(f"wrote {args.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
