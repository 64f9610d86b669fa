from tools.check_stubs import graded_exercise, problems


def result(status, output="Exercise 1.1 is not implemented yet: write it in exercises/x.py"):
    return {"name": "Chapter 1: a test", "status": status, "output": output}


def test_all_failing_on_stubs_is_fine():
    assert problems({"score": 0, "tests": [result("failed"), result("failed")]}) == []


def test_a_test_passing_on_a_stub_is_reported():
    assert problems({"score": 2, "tests": [result("passed")]}) == [
        "passes on the stub: Chapter 1: a test", "the stubs scored 2 points instead of 0"]


def test_a_failure_for_another_reason_is_reported():
    found = problems({"score": 0, "tests": [result("failed", "ImportError: no module")]})
    assert found and found[0].startswith("fails for another reason")


def test_no_tests_is_reported():
    assert problems({"score": 0, "tests": []}) == ["no graded tests ran"]


def test_a_stub_of_another_exercise_is_reported():
    """A 6.4 test stopped by a stub that says 6.1 sends the student to the wrong place."""
    wrong = {"name": "Chapter 6 — The service: 6.4 POST /predict answers", "status": "failed",
             "output": "Exercise 6.1 is not implemented yet: write it in exercises/ch06.py"}
    right = {**wrong, "output": "Exercise 6.4 is not implemented yet: write it in x.py"}
    assert problems({"score": 0, "tests": [right]}) == []
    found = problems({"score": 0, "tests": [wrong]})
    assert found == ["grades Exercise 6.4 but fails on the stub of Exercise 6.1: " + wrong["name"]]


def test_an_exercise_entry_wins_over_the_title():
    """Where the plugin records the exercise marker, it decides; titles are the fallback."""
    test = {"name": "Chapter 1: a test", "exercise": "1.2", "status": "failed",
            "output": "Exercise 1.1 is not implemented yet: write it in exercises/x.py"}
    assert graded_exercise(test) == "1.2"
    assert problems({"score": 0, "tests": [test]})[0].startswith("grades Exercise 1.2")
    assert graded_exercise({"name": "Chapter 1 — x: 1.3 a title"}) == "1.3"
    assert graded_exercise({"name": "Chapter 1: a test"}) is None
