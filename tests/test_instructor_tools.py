"""The instructors' kit: retargeting a fork, the student release, grading submissions."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import grade_submissions, retarget, student_release, sync_notebooks
from tools.check_stubs import problems
from vampire_detector.paths import course_root

ROOT = course_root()
OLD = "castle-dracula/deploying-pytorch"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding a copy of the course's tracked files."""
    copy = tmp_path / "course"
    for name in [*student_release.release_files(ROOT), "solutions/ch01_detector.py"]:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    subprocess.run(["git", "add", "-A"], cwd=copy, check=True)
    return copy


def test_retarget_rewrites_every_link_and_keeps_notebooks_in_sync(checkout):
    changed = retarget.retarget(checkout, "van-helsing/vampire-course", "spring")
    names = {path.relative_to(checkout).as_posix() for path in changed}
    assert {"_config.yml", "README.md", "book/00_welcome.md"} <= names
    for path in retarget.tracked_text_files(checkout):
        assert OLD not in path.read_text(), f"{path} still points at {OLD}"
    assert sync_notebooks.repository_url(checkout) == (
        "https://github.com/van-helsing/vampire-course")
    assert "branch: spring" in (checkout / "_config.yml").read_text()
    url = sync_notebooks.repository_url(checkout)
    for notebook, text in sync_notebooks.expected_notebooks(checkout / "book", url).items():
        assert notebook.read_text() == text, f"{notebook.name} is out of sync after retargeting"


@pytest.mark.parametrize("bad", ["no-slash", "a/b/c", "-owner/name", "owner/na me"])
def test_retarget_refuses_what_is_not_owner_slash_name(checkout, bad):
    with pytest.raises(ValueError, match="owner/name"):
        retarget.retarget(checkout, bad)


def test_student_release_has_no_answers_and_grades_to_zero(tmp_path):
    release = tmp_path / "release"
    assert student_release.make_release(ROOT, release) == []
    assert not (release / "solutions").exists() and not (release / "tests").exists()
    assert (release / "exercises" / "ch01_detector.py").exists()
    results = release / "results.json"
    subprocess.run([sys.executable, "-m", "pytest", "autograder", "-q", "-p", "no:cacheprovider",
                    f"--gradescope={results}"], cwd=release, capture_output=True, timeout=600)
    graded = json.loads(results.read_text())
    assert graded["tests"] and problems(graded) == []


def test_a_leaked_answer_is_caught(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    solution = (ROOT / "solutions" / "ch01_detector.py").read_text().splitlines()
    start = next(i for i, line in enumerate(solution) if "# BEGIN SOLUTION" in line)
    stolen = [line for line in solution[start + 1:] if line.strip() and "Hint" not in line][:3]
    (release / "notes.py").write_text("\n".join(stolen) + "\n")
    (release / "marker.txt").write_text("# BEGIN SOLUTION\n")
    found = student_release.leaks(release, ROOT / "solutions")
    assert any(leak.startswith("notes.py: solution code") for leak in found)
    assert "marker.txt: solution markers" in found


def test_an_existing_release_folder_is_never_overwritten(tmp_path):
    with pytest.raises(FileExistsError):
        student_release.make_release(ROOT, tmp_path)


def test_grading_a_folder_of_submissions(tmp_path):
    """One week's chapters; the whole autograder on the solutions is `make grade`'s job."""
    submissions = tmp_path / "submissions"
    shutil.copytree(ROOT / "solutions", submissions / "mina" / "exercises")
    (submissions / "jonathan").mkdir(parents=True)
    shutil.copy(ROOT / "exercises" / "ch15_capstone.py", submissions / "jonathan")
    out = tmp_path / "grades"
    week = ["--chapters", "10", "15"]
    assert grade_submissions.main([str(submissions), "--out", str(out), *week]) == 0
    rows = {row["student"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert float(rows["mina"]["total"]) == float(rows["mina"]["out of"]) > 0
    assert float(rows["jonathan"]["total"]) == 0
    graded = json.loads((out / "mina" / "results.json").read_text())["tests"]
    assert {test["name"].split(" — ")[0] for test in graded} == {"Chapter 10", "Chapter 15"}


def test_a_hand_in_is_its_exercises_folder_or_its_contents(tmp_path):
    """Students hand in exercises/ itself or what is in it; both are graded the same."""
    (tmp_path / "mina" / "exercises").mkdir(parents=True)
    (tmp_path / "lucy").mkdir()
    assert grade_submissions.exercises_folder(tmp_path / "mina") == tmp_path / "mina" / "exercises"
    assert grade_submissions.exercises_folder(tmp_path / "lucy") == tmp_path / "lucy"


def test_grading_refuses_a_chapter_without_tests(tmp_path, capsys):
    (tmp_path / "mina").mkdir()
    assert grade_submissions.main([str(tmp_path), "--chapters", "42"]) == 2
    assert "no tests for chapter(s) [42]" in capsys.readouterr().err


def test_grading_refuses_a_missing_folder(tmp_path, capsys):
    assert grade_submissions.main([str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err
