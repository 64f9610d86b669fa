"""The grading plugin, run on a miniature course in a temporary directory."""

import json
import textwrap
from pathlib import Path

import pytest

AUTOGRADER = Path(__file__).resolve().parent.parent / "autograder"
PLUGIN_FILES = ("conftest.py", "sandbox.py", "sandbox_child.py", "results.py", "library_answers.py")

SOLUTION = """
import time, warnings

def answer():
    return 42

def slow_answer():
    while True:
        time.sleep(0.01)

def noisy_answer():
    warnings.warn("this API is deprecated", FutureWarning)
    return 42
"""

STUB = """
def answer():
    raise NotImplementedError("Exercise 9.1 is not implemented yet: write it in exercises/ch09.py")

def slow_answer():
    raise NotImplementedError("Exercise 9.2 is not implemented yet: write it in exercises/ch09.py")

def noisy_answer():
    raise NotImplementedError("Exercise 9.3 is not implemented yet: write it in exercises/ch09.py")
"""

TESTS = '''
"""Chapter 9 — A test chapter."""
import pytest

@pytest.fixture
def ch09(implementation):
    return implementation("ch09")

@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_answer(ch09):
    """9.1 the answer is right"""
    assert ch09.answer() == 42, "the answer is not the one the Count expects"

@pytest.mark.exercise("9.3")
@pytest.mark.points(1)
def test_noisy(ch09):
    """9.3 warnings do not cost points"""
    assert ch09.noisy_answer() == 42, "wrong noisy answer"
'''

HANGING_TEST = '''
"""Chapter 10 — Patience."""
import pytest

@pytest.mark.exercise("9.2")
@pytest.mark.points(3)
@pytest.mark.timeout(1)
def test_slow(implementation):
    """9.2 the slow answer arrives"""
    assert implementation("ch09").slow_answer() == 42, "wrong"
'''


@pytest.fixture
def course(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\npythonpath = .\n")
    for package, code in (("solutions", SOLUTION), ("exercises", STUB)):
        pytester.mkpydir(package).joinpath("ch09.py").write_text(textwrap.dedent(code))
    autograder = pytester.mkpydir("autograder")
    for name in PLUGIN_FILES:
        autograder.joinpath(name).write_text((AUTOGRADER / name).read_text())
    autograder.joinpath("test_ch09_demo.py").write_text(TESTS)
    return pytester


def grade(course: pytest.Pytester, *args: str) -> pytest.RunResult:
    return course.runpytest_subprocess("autograder", "-p", "no:cacheprovider", *args)


def test_solutions_get_full_marks_and_a_score_table(course):
    result = grade(course, "--impl=solutions")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= score =*", "Chapter 9 — A test chapter*2/2*3/3*",
                                 "Total*2/2*3/3*"])


def test_stubs_score_zero_with_one_line_each(course):
    result = grade(course)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["Exercise 9.1 is not implemented yet*", "Total*0/2*0/3*"])
    assert "Traceback" not in result.stdout.str()
    assert "def test_answer" not in result.stdout.str()


def test_gradescope_results_file(course):
    out = course.path / "results.json"
    grade(course, "--impl=solutions", "--gradescope", str(out))
    results = json.loads(out.read_text())
    assert results["score"] == 3 and results["execution_time"] >= 0
    assert [(t["name"], t["score"], t["max_score"], t["status"]) for t in results["tests"]] == [
        ("Chapter 9 — A test chapter: 9.1 the answer is right", 2, 2, "passed"),
        ("Chapter 9 — A test chapter: 9.3 warnings do not cost points", 1, 1, "passed"),
    ]
    assert [t["exercise"] for t in results["tests"]] == ["9.1", "9.3"], (
        "each entry names the exercise of its test's marker")


@pytest.mark.parametrize("exercise", [9.1, "", "nine point one"])
def test_a_results_entry_naming_no_exercise_is_refused(exercise):
    from autograder.results import results_problems

    entry = {"name": "n", "score": 1, "max_score": 1, "status": "passed", "output": ""}
    assert results_problems({"score": 1, "tests": [entry]}) == []
    assert results_problems({"score": 1, "tests": [{**entry, "exercise": "9.1"}]}) == []
    assert results_problems({"score": 1, "tests": [{**entry, "exercise": exercise}]})


def test_stub_failures_reach_gradescope(course):
    out = course.path / "results.json"
    grade(course, "--gradescope", str(out))
    results = json.loads(out.read_text())
    assert results["score"] == 0
    assert all(t["status"] == "failed" and "not implemented yet" in t["output"]
               for t in results["tests"])


def test_a_hanging_solution_is_cut_scored_zero_and_the_run_goes_on(course):
    course.path.joinpath("autograder", "test_ch10_patience.py").write_text(HANGING_TEST)
    result = grade(course, "--impl=solutions")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*Timed out after 1 s*", "Chapter 10 — Patience*0/1*0/3*"])


def test_warnings_never_fail_a_student_even_under_W_error(course):
    grade(course, "--impl=solutions", "-W", "error").assert_outcomes(passed=2)


def test_failure_messages_do_not_reveal_the_expected_value(course):
    course.path.joinpath("solutions", "ch09.py").write_text(
        SOLUTION.replace("return 42\n\ndef slow", "return 41\n\ndef slow"))
    result = grade(course, "--impl=solutions")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the answer is not the one the Count expects*"])
    assert "42" not in result.stdout.str().split("= score =")[0].split("FAILURES")[-1]


def test_crashing_code_shows_the_students_line_not_the_tests(course):
    course.path.joinpath("exercises", "ch09.py").write_text(
        STUB.replace('raise NotImplementedError("Exercise 9.1', 'return {}["garlic"]  # ("'))
    result = grade(course)
    result.stdout.fnmatch_lines(["*Your code raised KeyError: 'garlic'*",
                                 "*exercises/ch09.py:3:*garlic*"])


def test_a_syntax_error_is_reported_not_crashed_on(course):
    course.path.joinpath("exercises", "ch09.py").write_text("def answer(:\n")
    result = grade(course)
    result.assert_outcomes(errors=2)  # raised while setting the test up, still worth 0 points
    result.stdout.fnmatch_lines(["*exercises/ch09.py could not be imported: SyntaxError*"])


def test_a_graded_test_without_points_is_refused(course):
    course.path.joinpath("autograder", "test_ch11_unpointed.py").write_text(
        '"""Chapter 11."""\ndef test_free():\n    pass\n')
    result = grade(course)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_free has no @pytest.mark.points(n) marker*"])


def test_a_submission_folder_can_be_graded(course):
    submission = course.path / "submissions" / "mina"
    submission.mkdir(parents=True)
    submission.joinpath("ch09.py").write_text(textwrap.dedent(SOLUTION))
    result = grade(course, f"--impl={submission}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["Total*2/2*3/3*"])


def test_a_missing_submission_folder_is_a_clear_error(course):
    result = grade(course, "--impl=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere is not a folder*"])


FILE_TESTS = '''
"""Chapter 12 — Files."""
import pytest

@pytest.mark.exercise("12.1")
@pytest.mark.points(2)
def test_config(graded_file):
    """12.1 the config names the castle"""
    assert "castle" in graded_file("ch12/config.yaml").read_text(), "name the castle"
'''


def test_non_python_files_are_graded_and_their_stubs_fail_as_stubs(course):
    course.path.joinpath("autograder", "test_ch12_files.py").write_text(FILE_TESTS)
    for package, text in (("solutions", "home: castle\n"),
                          ("exercises", "# TODO: Exercise 12.1 is not implemented yet.\n")):
        course.path.joinpath(package, "ch12").mkdir()
        course.path.joinpath(package, "ch12", "config.yaml").write_text(text)
    grade(course, "--impl=solutions").assert_outcomes(passed=3)
    result = grade(course)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["Exercise 12.1 is not implemented yet: write it in "
                                 "exercises/ch12/config.yaml"])


def test_one_exercise_can_be_selected(course):
    result = grade(course, "--impl=solutions", "--exercise", "9.3")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["Total*1/1*1/1*"])


def test_a_graded_test_without_an_exercise_is_refused(course):
    course.path.joinpath("autograder", "test_ch11_unmarked.py").write_text(
        '"""Chapter 11."""\nimport pytest\n\n@pytest.mark.points(1)\ndef test_free():\n'
        '    """11.1 free"""\n')
    result = grade(course)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*test_free has no @pytest.mark.exercise("N.M") marker*'])


WITHHELD_TESTS = '''
"""Chapter 10 — Withheld."""
import pytest

@pytest.mark.exercise("10.2")
@pytest.mark.points(4)
def test_instructor_cases():
    """10.2 the instructor's cases"""
    pytest.skip("graded by your instructor with cases you have not seen")
'''


def test_withheld_cases_are_shown_and_not_counted(course):
    course.path.joinpath("autograder", "test_ch10_withheld.py").write_text(WITHHELD_TESTS)
    out = course.path / "results.json"
    result = grade(course, "--impl=solutions", "--gradescope", str(out))
    result.stdout.fnmatch_lines(["Chapter 10 — Withheld*0/0*0/0*(+1 graded by your instructor)",
                                 "Total*2/2*3/3*",
                                 "1 more test(s), 4 point(s), graded by your instructor*"])
    assert json.loads(out.read_text())["score"] == 3


SEALED_SOLUTION = "def area(radius):\n    return 3.14159265 * radius ** 2\n"
SEALED_TESTS = '''
"""Chapter 13 — Sealed."""
import math
import pytest

@pytest.fixture(scope="module")
def ch13(submission):
    return submission("ch13")

@pytest.mark.exercise("13.1")
@pytest.mark.points(2)
def test_area(ch13):
    """13.1 the area of a circle"""
    assert ch13.area(2.0) == pytest.approx(math.pi * 4)
'''


def test_sealed_code_is_graded_and_a_failing_approx_hides_the_expected_value(course):
    course.path.joinpath("autograder", "test_ch13_sealed.py").write_text(SEALED_TESTS)
    course.path.joinpath("solutions", "ch13.py").write_text(SEALED_SOLUTION)
    course.path.joinpath("exercises", "ch13.py").write_text(
        'def area(radius):\n    raise NotImplementedError('
        '"Exercise 13.1 is not implemented yet: write it in exercises/ch13.py")\n')
    grade(course, "--impl=solutions", "--exercise", "13.1").assert_outcomes(passed=1)
    stubs = grade(course, "--exercise", "13.1")
    stubs.stdout.fnmatch_lines(["Exercise 13.1 is not implemented yet*"])
    course.path.joinpath("solutions", "ch13.py").write_text(SEALED_SOLUTION.replace("2\n", "3\n"))
    result = grade(course, "--impl=solutions", "--exercise", "13.1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*A check of your result failed.*"])
    assert "12.56" not in result.stdout.str()  # pi * 4, the expected value


def test_a_stale_results_file_is_removed_first(course):
    out = course.path / "results.json"
    out.write_text(json.dumps({"score": 999, "tests": []}))
    grade(course, "--impl=nowhere", "--gradescope", str(out))
    assert not out.exists()


def test_every_graded_chapter_is_sealed():
    """No graded test imports the student's code into the grading process."""
    unsealed = [path.name for path in sorted(AUTOGRADER.glob("test_ch*.py"))
                if "implementation" in path.read_text()]
    assert unsealed == [], f"graded in-process, through the implementation fixture: {unsealed}"
