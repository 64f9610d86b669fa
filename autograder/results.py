"""The one shape a results file may have, checked before anyone trusts its numbers.

Both the plugin (before it writes Gradescope's results.json) and tools/grade_submissions.py
(before it puts a student's results into the class CSV) use it; no schema library is needed for
a handful of fields.
"""

from __future__ import annotations

import re

RESULTS_SCHEMA = {"score": (int, float), "tests": list}
TEST_SCHEMA = {"name": str, "score": (int, float), "max_score": (int, float), "status": str,
               "output": str}
OPTIONAL = {"exercise": str}  # checked when present: results written before it lack it
EXERCISE = re.compile(r"\d+\.\d+")


def results_problems(document: object) -> list[str]:
    """What makes ``document`` not a results file this course writes (empty when it is one)."""
    if not isinstance(document, dict):
        return ["the results are not a JSON object"]
    problems = _missing(document, RESULTS_SCHEMA, "results")
    for number, test in enumerate(document.get("tests") or []):
        if not isinstance(test, dict):
            problems.append(f"test {number} is not an object")
            continue
        problems += _missing(test, TEST_SCHEMA, f"test {number}")
        problems += _missing(test, {k: v for k, v in OPTIONAL.items() if k in test},
                             f"test {number}")
        if "exercise" in test and isinstance(test["exercise"], str) and not EXERCISE.fullmatch(
                test["exercise"]):
            problems.append(f"test {number} names the exercise {test['exercise']!r}")
        if not problems and not 0 <= test["score"] <= test["max_score"]:
            problems.append(f"test {number} scores {test['score']} of {test['max_score']}")
        if not problems and test["status"] not in ("passed", "failed"):
            problems.append(f"test {number} has the status {test['status']!r}")
    if not problems:
        total = sum(test["score"] for test in document["tests"])
        if abs(document["score"] - total) > 1e-9:
            problems.append(f"the score {document['score']} is not the sum of the tests' {total}")
    return problems


def _missing(document: dict, schema: dict, what: str) -> list[str]:
    return [f"{what}: {key} is missing or not a {kinds}" for key, kinds in schema.items()
            if not isinstance(document.get(key), kinds) or isinstance(document.get(key), bool)]
