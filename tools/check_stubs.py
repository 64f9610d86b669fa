"""Prove that the autograder bites: every graded test must fail on the untouched stubs.

    pytest autograder/ --gradescope stubs.json; python tools/check_stubs.py stubs.json

A test that passes on a stub grades nothing. A test that fails on a stub for another reason
(an import error, a bug in the test) would show a student a confusing message. A test that
fails on the stub of another exercise than the one it grades sends the student to the wrong
place (or the stub names the wrong exercise). All three are errors.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

STUB = re.compile(r"Exercise (\d+\.\d+) is not implemented yet")
# A graded test's title starts with its exercise ("6.1 read_portrait ..."); Gradescope's name
# puts the chapter's title and a colon before it.
TITLE = re.compile(r"(?:^|: )(\d+\.\d+)\s")


def graded_exercise(test: dict) -> str | None:
    """The exercise a test grades: its ``exercise`` entry if the plugin wrote one, else the
    number its title starts with; None when neither says."""
    if test.get("exercise"):
        return str(test["exercise"])
    found = TITLE.search(test.get("name", ""))
    return found[1] if found else None


def wrong_stub(test: dict) -> str | None:
    """A problem when the stub a failing test reached names another exercise than it grades."""
    reached = STUB.search(test.get("output", ""))
    graded = graded_exercise(test)
    if reached is None or graded is None or reached[1] == graded:
        return None
    return (f"grades Exercise {graded} but fails on the stub of Exercise {reached[1]}: "
            f"{test['name']}")


def problems(results: dict) -> list[str]:
    """What is wrong with a Gradescope results file produced on the stubs."""
    tests = results.get("tests", [])
    if not tests:
        return ["no graded tests ran"]
    found = [f"passes on the stub: {t['name']}" for t in tests if t["status"] != "failed"]
    found += [f"fails for another reason than a stub: {t['name']}\n    {t['output'][:300]}"
              for t in tests
              if t["status"] == "failed" and "not implemented yet" not in t["output"]]
    found += [problem for t in tests if t["status"] == "failed" and (problem := wrong_stub(t))]
    if results.get("score", 0) != 0:
        found.append(f"the stubs scored {results['score']} points instead of 0")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.json written on the stubs")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"error: cannot read {args.results}: {error}", file=sys.stderr)
        return 2
    found = problems(results)
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print(f"all {len(results['tests'])} graded tests fail on the stubs, as they must")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
