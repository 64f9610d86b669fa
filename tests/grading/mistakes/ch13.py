"""Chapter 13's wrong answers: the gate's report, the shadow comparator and the A/B decision."""

from tests.grading.mistakes import Mistake

LIBRARY_GATE = '''
from vampire_detector.release_gate import Budget, check_budgets


def gate_report(measured, budgets, champion=None):
    kinds = {"at least": "min", "at most": "max"}
    report = check_budgets(measured, tuple(Budget(b["measure"], b["limit"], kinds[b["kind"]])
                                          for b in budgets))
    return {"passed": report.passed, "failures": report.failures, "rows": report.rows()}
'''

LIBRARY_SHADOW = '''
from vampire_detector.rollout import ShadowComparator as LibraryShadow


class ShadowComparator(LibraryShadow):
    def __init__(self, champion, challenger, log_limit=100):
        super().__init__(champion, challenger)
'''

LIBRARY_DECISION = '''
import numpy as np

from vampire_detector.ab_simulation import CHALLENGER, decide, likelihood_ratio


def ab_test(champion_errors, champion_n, challenger_errors, challenger_n, alpha=0.05):
    g = float(likelihood_ratio(np.array([champion_errors]), champion_n,
                               np.array([challenger_errors]), challenger_n)[0])
    picked = int(decide(np.array([champion_errors]), champion_n,
                        np.array([challenger_errors]), challenger_n, alpha)[0])
    better = None if picked == 0 else "challenger" if picked == CHALLENGER else "champion"
    z = math.copysign(math.sqrt(g), challenger_errors / challenger_n
                      - champion_errors / champion_n)
    return {"z": z, "p_value": 2 * (1 - NormalDist().cdf(abs(z))),
            "significant": better is not None, "better": better}
'''

CHECK = 'ok = value >= threshold if kind == "at least" else value <= threshold'
CALL = '''        with self._lock:
            number = self.requests
            self.requests += 1
            self._pending.append(self._pool.submit(watch, number))
        return answer
'''
AGREEMENT = '"agreement": agreed / compared if compared else math.nan,'
P_VALUE = "p_value = 2 * (1 - NormalDist().cdf(abs(z)))"
SE = "se = math.sqrt(pooled * (1 - pooled) * (1 / champion_n + 1 / challenger_n))"

MISTAKES = [
    # 13.1: the gate's report
    Mistake("copies-the-library", "13.1", "write it yourself", append=LIBRARY_GATE),
    Mistake("at-the-budget-fails", "13.1", "exactly at its budget",
            replace=((CHECK, 'ok = value > threshold if kind == "at least" '
                             "else value < threshold"),)),
    Mistake("directions-swapped", "13.1", "direction",
            replace=((CHECK, CHECK.replace('"at least"', '"at most"')),)),
    Mistake("nan-passes", "13.1", "NaN",
            replace=(("        elif math.isnan(value):\n"
                      '            reason = f"{measure} is not a number (NaN)"\n', ""),
                     (CHECK, 'ok = not value < threshold if kind == "at least" '
                             "else not value > threshold"))),
    Mistake("missing-raises", "13.1", "raised KeyError",
            replace=(("value = measured.get(measure)", "value = measured[measure]"),)),
    Mistake("margin-from-the-wrong-side", "13.1", "champion's value minus the margin",
            replace=(('threshold = base - margin if kind == "at least" else base + margin',
                      'threshold = base + margin if kind == "at least" else base - margin'),)),
    # 13.2: the shadow comparator
    Mistake("copies-the-library", "13.2", "write it yourself", append=LIBRARY_SHADOW),
    Mistake("challenger-answer-returned", "13.2", "champion's answer unchanged",
            replace=(("answer = self.champion(portrait)\n",
                      "answer = self.champion(portrait)\n"
                      "        try:\n"
                      "            shown = self.challenger(portrait)\n"
                      "        except Exception:\n"
                      "            shown = answer\n"),
                     (CALL, CALL.replace("return answer", "return shown")))),
    Mistake("exceptions-escape", "13.2", "exception escaped",
            replace=((CALL, CALL.replace("return answer",
                                         "self.challenger(portrait)\n        return answer")),)),
    Mistake("agreement-over-all-requests", "13.2", "errors excluded",
            replace=((AGREEMENT, '"agreement": agreed / self.requests,'),)),
    Mistake("log-uncapped", "13.2", "at most log_limit",
            replace=(("if len(self.log) < self.log_limit:", "if True:"),)),
    Mistake("challenger-inline", "13.2", "must not wait for the challenger",
            replace=((CALL, CALL.replace(
                "            self._pending.append(self._pool.submit(watch, number))\n"
                "        return answer",
                "        watch(number)  # outside the lock: watch takes it\n"
                "        return answer")),)),
    # 13.3: the A/B decision
    Mistake("copies-the-library", "13.3", "write it yourself", append=LIBRARY_DECISION),
    Mistake("one-sided-test", "13.3", "one-sided",
            replace=((P_VALUE, "p_value = 1 - NormalDist().cdf(abs(z))"),)),
    Mistake("unpooled-standard-error", "13.3", "pool",
            replace=((SE, "se = math.sqrt(p1 * (1 - p1) / champion_n "
                          "+ p2 * (1 - p2) / challenger_n)"),)),
    Mistake("sample-size-rounded-down", "13.3", "round up",
            replace=(("return math.ceil(root**2 / (p1 - p2) ** 2)",
                      "return int(root**2 / (p1 - p2) ** 2)"),)),
    Mistake("sample-size-one-sided", "13.3", "one-sided",
            replace=(("za, zb = NormalDist().inv_cdf(1 - alpha / 2)",
                      "za, zb = NormalDist().inv_cdf(1 - alpha)"),)),
    Mistake("sample-size-unpooled", "13.3", "share one rate",
            replace=(("root = za * math.sqrt(2 * p * (1 - p))",
                      "root = za * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))"),)),
]
