"""Chapter 13's probe: the submission's shadow comparator, run on a scripted night at the gate.

Exercise 13.2 needs two models, which cannot cross as plain data. The grader sends a script,
one entry per portrait: the champion's label, and what the challenger does with it (answer a
label, raise, or take its time first). The probe builds both models from it, sends every
portrait through the student's comparator, and returns what happened: the answers, how long
each call took, the exceptions that escaped, and the comparator's summary, as plain data.
"""

from __future__ import annotations

import importlib
import json
import time


class ChallengerFailed(RuntimeError):
    """What the scripted challenger raises where the script says so."""


def shadow_night(script: list[dict], log_limit: int) -> dict[str, object]:
    """Run ``script`` (``[{"portrait", "champion", "challenger", "sleep_s", "raises"}]``)
    through ``ShadowComparator(champion, challenger, log_limit)``; observations come back."""
    ch13 = importlib.import_module("ch13_release")
    by_portrait = {step["portrait"]: step for step in script}
    seen: list[str] = []

    def champion(portrait: str) -> str:
        return by_portrait[portrait]["champion"]

    def challenger(portrait: str) -> str:
        step = by_portrait[portrait]
        seen.append(portrait)
        time.sleep(step.get("sleep_s", 0.0))
        if step.get("raises"):
            raise ChallengerFailed(f"the challenger choked on {portrait}")
        return step["challenger"]

    comparator = ch13.ShadowComparator(champion, challenger, log_limit)
    answers, durations, escaped = [], [], []
    for step in script:
        started = time.perf_counter()
        try:
            answers.append(comparator(step["portrait"]))
        except Exception as error:  # an escape is what is being observed
            answers.append(None)
            escaped.append(f"{type(error).__name__}: {error}")
        durations.append(time.perf_counter() - started)
    summary = comparator.summary()
    challenger_calls = len(seen)
    comparator.close()
    # whatever containers the student used, plain JSON data goes back (NaN included)
    plain = json.loads(json.dumps(summary, default=str))
    return {"answers": answers, "durations": durations, "escaped": escaped, "summary": plain,
            "challenger_calls": challenger_calls}
