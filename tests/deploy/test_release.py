"""The deployment files ship to students, so they must not give the exercises' answers away."""

from __future__ import annotations

from pathlib import Path

from tools.student_release import _code_lines, solution_snippets

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [*sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
           ROOT / ".dockerignore", ROOT / "vampire_detector" / "lambda_handler.py",
           *sorted((ROOT / "book").glob("0[789]_*.md")),
           *sorted((ROOT / "autograder").glob("test_ch0[789]_*.py"))]


def test_no_solution_code_in_shipped_deployment_files():
    """No run of solution lines of Chapters 7-9 appears in what students receive."""
    snippets = {s for s in solution_snippets(ROOT / "solutions")}
    leaks = []
    for path in SHIPPED:
        code = _code_lines(path.read_text().splitlines())
        for size in {len(snippet) for snippet in snippets}:
            windows = {tuple(code[i:i + size]) for i in range(len(code) - size + 1)}
            leaks += [f"{path.relative_to(ROOT)}: {' / '.join(s)}" for s in windows & snippets]
    assert not leaks, "\n".join(leaks)
