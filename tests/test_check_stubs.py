from tools.check_stubs import problems


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
