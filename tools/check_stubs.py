"""Prove that the autograder bites: every graded test must fail on the untouched stubs.

    pytest autograder/ --gradescope stubs.json; python tools/check_stubs.py stubs.json

A test that passes on a stub grades nothing. A test that fails on a stub for another reason
(an import error, a bug in the test) would show a student a confusing message. Both are errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def problems(results: dict) -> list[str]:
    """What is wrong with a Gradescope results file produced on the stubs."""
    tests = results.get("tests", [])
    if not tests:
        return ["no graded tests ran"]
    found = [f"passes on the stub: {t['name']}" for t in tests if t["status"] != "failed"]
    found += [f"fails for another reason than a stub: {t['name']}\n    {t['output'][:300]}"
              for t in tests
              if t["status"] == "failed" and "not implemented yet" not in t["output"]]
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
