"""Chapter 2's wrong answers: saving a trace, finding where it disagrees, freezing it."""

from tests.grading.mistakes import Mistake

TRACE_21 = ("    model.eval()\n    try:\n        with torch.no_grad():\n"
            "            traced = torch.jit.trace(model, example)")
TRACE_23 = ("    model.eval()\n    try:\n        with torch.no_grad():\n"
            "            return torch.jit.freeze(torch.jit.trace(model, example))")
COMPARE = "not torch.allclose(got, expected, atol=atol,\n" + " " * 65 + "rtol=0)"
CHECKS_22 = ('    if len(candidates) == 0:\n'
             '        raise ValueError("there are no candidates to compare on")\n'
             '    if atol < 0:\n'
             '        raise ValueError(f"atol must be zero or positive, got {atol}")\n')

MISTAKES = [
    # 2.1 trace_and_save
    Mistake("traces-in-train-mode", "2.1", "training mode",
            replace=((TRACE_21, TRACE_21.replace("    model.eval()\n", "")),)),
    Mistake("saves-the-state-dict", "2.1", "could not load",
            replace=(("torch.jit.save(traced, str(path))",
                      "torch.save(model.state_dict(), path)"),)),
    Mistake("trace-mode-not-restored", "2.1", "restore its mode",
            replace=(("    finally:\n        model.train(was_training)\n    path = Path(path)",
                      "    finally:\n        pass\n    path = Path(path)"),)),
    Mistake("no-example-check", "2.1", "check the example before tracing",
            replace=(("    check_example(example)\n    was_training = model.training\n" + TRACE_21,
                      "    was_training = model.training\n" + TRACE_21),)),
    Mistake("returns-nothing", "2.1", "return the path",
            replace=(("    return path\n", ""),)),
    # 2.2 find_disagreements
    Mistake("whole-batch-at-once", "2.2", "as a batch of one", append='''
def find_disagreements(eager, traced, candidates, atol=1e-5):
    if len(candidates) == 0:
        raise ValueError("there are no candidates to compare on")
    if atol < 0:
        raise ValueError(f"atol must be zero or positive, got {atol}")
    eager.eval()
    with torch.no_grad():
        expected = eager(candidates)
        try:
            got = traced(candidates)
        except RuntimeError:
            return list(range(len(candidates)))
    if got.shape != expected.shape:
        return list(range(len(candidates)))
    return [i for i in range(len(candidates))
            if not torch.allclose(got[i], expected[i], atol=atol, rtol=0)]
'''),
    Mistake("default-rtol", "2.2", "rtol=0",
            replace=((COMPARE, "not torch.allclose(got, expected, atol=atol)"),)),
    Mistake("signed-difference", "2.2", "too low",
            replace=((COMPARE, "bool((got - expected).max() > atol)"),)),
    Mistake("trace-errors-escape", "2.2", "catch the error",
            replace=(("            try:\n                got = traced(one)\n"
                      "            except RuntimeError:\n                found.append(index)\n"
                      "                continue\n", "            got = traced(one)\n"),)),
    Mistake("no-argument-check", "2.2", "raise ValueError",
            replace=((CHECKS_22, ""),)),
    # 2.3 border_ready
    Mistake("not-frozen", "2.3", "freeze it",
            replace=(("return torch.jit.freeze(torch.jit.trace(model, example))",
                      "return torch.jit.trace(model, example)"),)),
    Mistake("eval-after-tracing", "2.3", "eval-mode outputs",
            replace=((TRACE_23, TRACE_23.replace("    model.eval()\n", "").replace(
                "torch.jit.trace(model, example))", "torch.jit.trace(model, example).eval())")),)),
    Mistake("optimized-for-inference", "2.3", "could not be saved",
            replace=(("return torch.jit.freeze(torch.jit.trace(model, example))",
                      "return torch.jit.optimize_for_inference(\n"
                      "                torch.jit.freeze(torch.jit.trace(model, example)))"),)),
    Mistake("border-mode-not-restored", "2.3", "restore its mode",
            replace=(("    finally:\n        model.train(was_training)\n    # END SOLUTION",
                      "    finally:\n        pass\n    # END SOLUTION"),)),
]
