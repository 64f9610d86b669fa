"""Attacks on the results and on a class run, graded end to end by tools/grade_submissions.py.

Each fake submission is the reference answer to Chapter 15 (graded sealed) with an attack
added, so a blocked attack leaves exactly the honest score: no more, and no less than the
attack's own failures.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from tools import grade_submissions

ROOT = Path(__file__).resolve().parents[2]
HONEST = (ROOT / "solutions" / "ch15_capstone.py").read_text()
FULL_MARKS = 15.0  # Chapter 15's points


def student(folder: Path, name: str, attack: str = "", code: str = HONEST) -> Path:
    path = folder / name
    path.mkdir(parents=True)
    (path / "ch15_capstone.py").write_text(code + "\n" + textwrap.dedent(attack))
    return path


def grade(submissions: Path, out: Path, *extra: str) -> dict[str, dict]:
    assert grade_submissions.main([str(submissions), "--out", str(out), "--chapters", "15",
                                   *extra]) == 0
    return {row["student"]: row for row in csv.DictReader((out / "grades.csv").open())}


@pytest.mark.usefixtures("bwrap_installed")
def test_attacks_on_the_results_change_nothing(tmp_path):
    """atexit rewriting results, planting another student's file, exiting early, patching numpy.

    Defences: the sandbox cannot see any results folder; the grader writes every file itself
    after the class is graded; an exit inside the sandbox fails only the calls it interrupts;
    the expected percentiles are computed in the grader's process.
    """
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    forged = json.dumps({"score": 999, "tests": []})
    student(submissions, "mina")
    student(submissions, "renfield", f"""
        import atexit, glob, os
        def forge():
            for path in glob.glob("/tmp/**/results.json", recursive=True) + [
                    {str(out / 'renfield' / 'results.json')!r}]:
                try:
                    open(path, "w").write({forged!r})
                except OSError:
                    pass
        atexit.register(forge)
    """)
    student(submissions, "lucy", f"""
        import os
        for target in ({str(out / 'mina' / 'results.json')!r}, "../mina/results.json"):
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "w").write({forged!r})
            except OSError:
                pass
        os._exit(0)
    """)
    student(submissions, "arthur", """
        import numpy
        numpy.percentile = lambda *args, **kwargs: 1.0
        def summarise(samples):
            return Summary(requests=len(samples), p50_ms=1.0, p95_ms=1.0, p99_ms=1.0,
                           client_error_rate=0.0, server_error_rate=0.0,
                           transport_error_rate=0.0, throughput=0.0)
    """)
    rows = grade(submissions, out)
    assert float(rows["mina"]["total"]) == FULL_MARKS
    assert float(rows["renfield"]["total"]) == FULL_MARKS
    assert float(rows["lucy"]["total"]) == 0
    assert float(rows["arthur"]["total"]) < FULL_MARKS - 5, "15.1 must fail for arthur"
    for name in ("mina", "renfield", "lucy"):
        results = json.loads((out / name / "results.json").read_text())
        assert results["score"] <= FULL_MARKS and len(results["tests"]) == 10
    lucy = json.loads((out / "lucy" / "results.json").read_text())["tests"]
    assert all("ended the grading process" in test["output"] for test in lucy)


def test_a_garbage_results_file_scores_zero_and_the_run_goes_on(tmp_path, monkeypatch):
    """Invalid JSON, impossible scores and wrong shapes are refused with a reason.

    A chapter that is not sealed yet runs the student's code in the pytest process, which can
    write anything into its results file; this stands in for it (students are graded in order).
    """
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    garbage = {"jonathan": "{not json", "quincey": json.dumps({"score": 999, "tests": [
        {"name": "x", "score": 999, "max_score": 1, "status": "passed", "output": ""}]}),
        "seward": json.dumps([1, 2, 3])}
    for name in [*garbage, "van-helsing"]:
        student(submissions, name)
    texts = [None, *garbage.values(), None]  # the catalogue first, then each student
    real = grade_submissions.run_pytest

    def run_and_garble(arguments: list[str], limit: float, scratch: Path | None = None) -> bool:
        finished = real(arguments, limit, scratch)
        text = texts.pop(0)
        if text is not None:
            target = next(a.split("=", 1)[1] for a in arguments if a.startswith("--gradescope="))
            Path(target).write_text(text)
        return finished

    monkeypatch.setattr(grade_submissions, "run_pytest", run_and_garble)
    rows = grade(submissions, out, "--exercise", "15.2")
    assert float(rows["van-helsing"]["total"]) == 8  # 15.2 is worth 8 points
    for name in garbage:
        assert float(rows[name]["total"]) == 0, name
        assert rows[name]["note"], f"{name} scored 0 without a reason"


def test_a_class_of_thirty_with_a_crash_and_a_hang_gets_every_grade(tmp_path, own_tmpdir):
    """28 honest students, one whose code segfaults, one whose code never returns; the killed
    runs leave nothing behind in the temporary folder."""
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    for number in range(28):
        student(submissions, f"student-{number:02d}")
    student(submissions, "zz-crash", "import ctypes\nctypes.string_at(0)\n")
    student(submissions, "zz-hang", "while True:\n    pass\n")
    rows = grade(submissions, out, "--time-limit", "20", "--exercise", "15.2")
    assert len(rows) == 30
    assert all(float(rows[f"student-{n:02d}"]["total"]) == 8 for n in range(28))
    assert float(rows["zz-crash"]["total"]) == 0
    assert float(rows["zz-hang"]["total"]) == 0 and rows["zz-hang"]["note"]
    assert not list(own_tmpdir.iterdir()), "grading left its folders behind"
