"""Chapter 3's wrong answers: a scriptable lantern, a dynamic-batch export, checking a batch."""

from tests.grading.mistakes import Mistake

GAINS = "        gains = (level / brightness).clamp(1.0, self.max_gain).view(-1, 1, 1, 1)\n"
RETURN_31 = GAINS + "        return ((pixels * gains).clamp(0.0, 1.0) - self.mean) / self.std"
EXPORT = "return torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))"

MISTAKES = [
    # 3.1 NightLantern
    Mistake("keeps-numpy", "3.1", "refused", replace=((
        "        brightness = pixels.mean(dim=(1, 2, 3)).clamp(min=1e-3)\n" + GAINS,
        "        brightness = pixels.mean(dim=(1, 2, 3)).detach().cpu().numpy()\n"
        "        gains = np.clip(level / np.maximum(brightness, 1e-3), 1.0, self.max_gain)\n"
        "        gains = torch.from_numpy(gains.astype(np.float32)).to(x.device)"
        ".view(-1, 1, 1, 1)\n"),)),
    Mistake("one-gain-for-the-batch", "3.1", "its own gain",
            replace=(("pixels.mean(dim=(1, 2, 3)).clamp(min=1e-3)",
                      "pixels.mean().clamp(min=1e-3).expand(x.shape[0])"),)),
    Mistake("gain-below-one", "3.1", "at least 1",
            replace=((".clamp(1.0, self.max_gain)", ".clamp(max=self.max_gain)"),)),
    Mistake("no-unit-clamp", "3.1", "clamp the brightened pixels",
            replace=((RETURN_31,
                      GAINS + "        return (pixels * gains - self.mean) / self.std"),)),
    Mistake("not-normalised-again", "3.1", "normalise the brightened pixels again",
            replace=((RETURN_31, GAINS + "        return (pixels * gains).clamp(0.0, 1.0)"),)),
    Mistake("target-ignored", "3.1", "target the caller passes",
            replace=(("        level = self.target if target is None else target",
                      "        level = self.target"),)),
    # 3.2 export_dynamic_batch
    Mistake("static-batch", "3.2", "refused a batch",
            replace=((EXPORT, "return torch.export.export(model.eval(), (example,))"),)),
    Mistake("specialises-on-one", "3.2", "specialises a dimension",
            replace=(("    if len(example) < 2:\n"
                      "        example = example.expand(2, -1, -1, -1).contiguous()\n", ""),)),
    Mistake("forgets-eval", "3.2", "eval outputs",
            replace=((EXPORT, EXPORT.replace("model.eval()", "model")),)),
    Mistake("max-batch-ignored", "3.2", "refuses larger batches",
            replace=(('Dim("batch", min=1, max=max_batch)', 'Dim("batch", min=1)'),)),
    Mistake("no-argument-check", "3.2", "check the arguments", replace=((
        "    if not isinstance(example, torch.Tensor) or example.dim() != 4 or "
        "example.size(1) != 3:\n"
        '        raise ValueError("example must be a (N, 3, H, W) tensor of portraits")\n'
        "    if max_batch < 2:\n"
        '        raise ValueError(f"max_batch must be at least 2, got {max_batch}")\n', ""),)),
    # 3.3 check_batch
    Mistake("ignores-dtype", "3.3", "the dtype it was exported with",
            replace=(("    if batch.dtype != expected.dtype:\n"
                      '        raise ValueError(f"expected dtype {expected.dtype}, got '
                      '{batch.dtype}")\n', ""),)),
    Mistake("range-ignored", "3.3", "range the program allows",
            replace=(("            if not bounds.lower <= size <= bounds.upper:",
                      "            if False:"),)),
    Mistake("exclusive-bounds", "3.3", "both included",
            replace=(("bounds.lower <= size <= bounds.upper",
                      "bounds.lower <= size < bounds.upper"),)),
    Mistake("static-size-ignored", "3.3", "exactly the exported size",
            replace=(("        elif size != want:", "        elif False:"),)),
    Mistake("asserts-instead-of-raising", "3.3", "AssertionError", append='''
def check_batch(program, batch):
    expected = _input_spec(program)
    assert isinstance(batch, torch.Tensor), "expected a tensor"
    assert batch.dtype == expected.dtype, f"expected dtype {expected.dtype}"
    assert batch.dim() == expected.dim(), f"expected {expected.dim()} dimensions"
    for size, want in zip(batch.shape, expected.shape, strict=True):
        if isinstance(want, torch.SymInt):
            bounds = program.range_constraints[want.node.expr]
            assert bounds.lower <= size <= bounds.upper, "the batch is out of range"
        else:
            assert size == want, f"expected a size of {want}"
'''),
]
