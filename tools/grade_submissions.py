"""Grade a folder of student submissions into one CSV and a Gradescope results.json each.

    python tools/grade_submissions.py submissions/ --out grades/
    python tools/grade_submissions.py submissions/ --chapters 3 4   # this week's chapters only

``submissions/`` holds one folder per student, named after the student, containing that
student's chNN_*.py files (directly, or inside an exercises/ folder). Written:
``grades/<student>/results.json`` and ``grades/grades.csv`` (points per chapter, total, and a
note saying why a student scored nothing when grading failed).

Each student is graded by a separate pytest process, in its own session, on a fresh copy of the
submission, under a wall-clock limit, and the whole process group is killed when it ends. That
process writes its results into a folder of its own; this one reads them, checks them against
the catalogue of graded tests (names and points, collected before any student code ran), clamps
every score to its test's points and writes every file itself, after the whole class is graded.
A student whose grading crashes, hangs or writes nonsense scores 0 with a reason; the class run
goes on. In sealed chapters (see autograder/sandbox.py) the student's code runs in a sandboxed
child of that pytest process and cannot reach the results at all.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 30 * 60  # per student; each test also has its own timeout
sys.path.insert(0, str(ROOT))
from autograder.results import results_problems  # noqa: E402  (the one results schema)


def exercises_folder(submission: Path) -> Path:
    """The folder of a hand-in that holds its chNN_*.py files: students hand in either their
    exercises/ folder or its contents."""
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


def run_pytest(arguments: list[str], time_limit_s: float, scratch: Path | None = None) -> bool:
    """Run pytest in its own session; kill its whole group at the end. False when cut short.

    Only the plugins grading needs are loaded: the others installed for the book (nbval and
    friends) would cost seconds per student. ``scratch`` is its TMPDIR: a run that is killed
    cannot clean up its sandbox's folders, so they go with the caller's.
    """
    command = [sys.executable, "-m", "pytest", *arguments, "-q", "-p", "no:cacheprovider",
               "-p", "pytest_timeout"]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if scratch is not None:
        env["TMPDIR"] = str(scratch)
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    try:
        process.wait(timeout=time_limit_s)
        return True
    except subprocess.TimeoutExpired:
        return False
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def catalogue(tests: list[str]) -> list[tuple[str, float]]:
    """Every graded test's name and points, in order, collected before any student's code runs.

    Names may repeat (a parametrized test has one docstring), so tests are matched by position.
    """
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "catalogue.json"
        run_pytest([*tests, "--collect-only", "--impl=exercises", f"--gradescope={listing}"],
                   TIME_LIMIT_S)
        return [(test["name"], float(test["max_score"]))
                for test in json.loads(listing.read_text())["tests"]]


def grade_one(submission: Path, tests: list[str], points: list[tuple[str, float]],
              time_limit_s: float = TIME_LIMIT_S) -> dict:
    """Grade one submission; its results, checked against ``points``, with a note on failure."""
    # A sandboxed child killed with pytest may still be writing here as the folder goes.
    with tempfile.TemporaryDirectory(prefix="grading-", ignore_cleanup_errors=True) as folder:
        copy, results = Path(folder) / "submission", Path(folder) / "out" / "results.json"
        shutil.copytree(exercises_folder(submission), copy, symlinks=False)
        results.parent.mkdir()
        scratch = Path(folder) / "tmp"
        scratch.mkdir()
        finished = run_pytest([*tests, f"--impl={copy}", f"--gradescope={results}"],
                              time_limit_s, scratch)
        if not finished:
            return zero(points, f"grading did not finish within {time_limit_s:g} s")
        try:
            found = json.loads(results.read_text())
        except (OSError, ValueError) as error:
            return zero(points, f"no readable results ({type(error).__name__})")
    problems = results_problems(found)
    return zero(points, "invalid results: " + problems[0]) if problems else checked(found, points)


def checked(found: dict, points: list[tuple[str, float]]) -> dict:
    """The catalogue's tests, each with the score found for it, clamped to its points."""
    tests = []
    for number, (name, most) in enumerate(points):
        test = found["tests"][number] if number < len(found["tests"]) else {}
        if test.get("name") != name:
            test = {"score": 0.0, "status": "failed", "output": "not graded"}
        tests.append({"name": name, "max_score": most, "status": test["status"],
                      "score": min(max(float(test["score"]), 0.0), most),
                      "output": str(test["output"])[:4000], "visibility": "visible"})
    return {"score": sum(test["score"] for test in tests), "tests": tests, "note": ""}


def zero(points: list[tuple[str, float]], reason: str) -> dict:
    """Results that give nothing, and say why."""
    tests = [{"name": name, "max_score": most, "score": 0.0, "status": "failed",
              "output": reason, "visibility": "visible"} for name, most in points]
    return {"score": 0.0, "tests": tests, "output": reason, "note": reason}


def chapter_points(results: dict) -> dict[str, float]:
    """Points per chapter; test names start with their chapter's title."""
    points: list[tuple[str, float]] = {}
    for test in results["tests"]:
        chapter = test["name"].split(": ", 1)[0]
        points[chapter] = points.get(chapter, 0.0) + test["score"]
    return points


def write_csv(rows: dict[str, dict], path: Path) -> None:
    chapters = sorted({chapter for results in rows.values() for chapter in
                       chapter_points(results)})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *chapters, "total", "out of", "note"])
        for student, results in sorted(rows.items()):
            points = chapter_points(results)
            possible = sum(test["max_score"] for test in results["tests"])
            writer.writerow([student, *(points.get(c, 0) for c in chapters),
                             results["score"], possible, results.get("note", "")])


def write_results(rows: dict[str, dict], out: Path) -> None:
    """Every file, written by this process once the class is graded (stale ones replaced)."""
    for student, results in rows.items():
        folder = out / student
        folder.mkdir(parents=True, exist_ok=True)
        document = {key: value for key, value in results.items() if key != "note"}
        (folder / "results.json").write_text(json.dumps(document, indent=2))
    write_csv(rows, out / "grades.csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="a folder with one folder per student")
    parser.add_argument("--out", type=Path, default=Path("grades"),
                        help="where to write the results (default: grades/)")
    parser.add_argument("--chapters", type=int, nargs="+", metavar="N",
                        help="grade only these chapters (default: every chapter)")
    parser.add_argument("--exercise", action="append", default=[], metavar="N.M",
                        help="grade only this exercise (repeat for several)")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, metavar="S",
                        help=f"seconds per student (default: {TIME_LIMIT_S})")
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
    tests = [*map(str, tests), *(f"--exercise={number}" for number in args.exercise)]
    points = catalogue(tests)
    rows = {}
    for submission in students:
        rows[submission.name] = grade_one(submission.resolve(), tests, points, args.time_limit)
        note = rows[submission.name]["note"]
        print(f"{submission.name}: {rows[submission.name]['score']:g} points"
              + (f" ({note})" if note else ""))
    write_results(rows, args.out)
    print(f"wrote {args.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
