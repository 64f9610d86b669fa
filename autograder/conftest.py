"""The grading plugin: what is graded, how it is scored, and how failures are explained.

    pytest autograder/                           # grade your work in exercises/
    pytest autograder/ --impl=solutions          # grade the reference solutions
    pytest autograder/ --gradescope results.json # also write Gradescope's results file
    pytest autograder/ --impl=path/to/folder     # grade a submission: a folder of chNN_*.py
    pytest autograder/ --exercise 6.2            # only the tests of Exercise 6.2

Every graded test carries ``@pytest.mark.points(n)`` and ``@pytest.mark.exercise("N.M")`` and
lives in a module whose docstring starts with its chapter's title. A test reaches the code it
grades through the ``submission`` fixture (sealed: the code runs in a sandboxed child process,
see ``sandbox.py``; the ``probes`` fixture observes there what cannot cross as plain data),
so the same tests grade the stubs, a student's work and the reference. Failures are reported
in a sentence or two: what went wrong, never the hidden expected value. Withheld cases
(``autograder/hidden/``) that a student's copy lacks are shown as graded by the instructor and
left out of the local total.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from autograder.results import results_problems
from autograder.sandbox import Limits, Sandbox, SandboxError

IMPLEMENTATIONS = ("exercises", "solutions")
DEFAULT_TIMEOUT_S = 60
STUB = re.compile(r"TODO: (Exercise \d+\.\d+) is not implemented yet")  # tools/make_exercises.py
AUTOGRADER = Path(__file__).resolve().parent
ROOT = AUTOGRADER.parent
HIDDEN = AUTOGRADER / "hidden"
WITHHELD = "graded by your instructor"  # the reason of a skip for cases a student's copy lacks
EXERCISE = re.compile(r"\d+\.\d+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder")
    group.addoption("--impl", default="exercises",
                    help="what to grade: exercises (the default), solutions, or the path of a "
                         "folder holding a submission's chNN_*.py files")
    group.addoption("--gradescope", metavar="PATH", type=Path, default=None,
                    help="write Gradescope's results.json to PATH")
    group.addoption("--exercise", action="append", default=[], metavar="N.M",
                    help="grade only the tests of this exercise (repeat for several)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): the points a graded test is worth")
    config.addinivalue_line("markers", 'exercise("N.M"): the exercise a graded test grades')
    path = config.getoption("gradescope")
    if path is not None:  # a stale file must never be mistaken for this run's results
        path.unlink(missing_ok=True)
    folder = graded_folder(config)
    if not folder.is_dir():
        raise pytest.UsageError(f"--impl: {folder} is not a folder; give exercises, solutions "
                                "or the folder of a submission")
    config.pluginmanager.register(Gradebook(config), "gradebook")


def graded_folder(config: pytest.Config) -> Path:
    """The folder whose modules are graded."""
    impl = config.getoption("impl")
    return ROOT / impl if impl in IMPLEMENTATIONS else Path(impl).resolve()


@pytest.fixture(scope="session")
def implementation(request: pytest.FixtureRequest) -> Callable[[str], ModuleType]:
    """``implementation("ch01_detector")`` imports that module from the code being graded.

    Unsealed: the code runs in this process. No graded chapter uses it any more; it stays for
    quick experiments and the plugin's own tests.
    """
    impl = request.config.getoption("impl")
    folder = graded_folder(request.config)

    def load(module: str) -> ModuleType:
        try:
            if impl in IMPLEMENTATIONS:
                return importlib.import_module(f"{impl}.{module}")
            return _import_file(folder / f"{module}.py", f"submission.{module}")
        except Exception as error:  # a student's syntax error must not stop the whole run
            pytest.fail(f"{folder.name}/{module}.py could not be imported: "
                        f"{type(error).__name__}: {error}", pytrace=False)

    return load


@pytest.fixture(scope="session")
def sandbox(request: pytest.FixtureRequest):
    """One sandboxed child for the graded folder, killed with its whole group at the end."""
    sealed = Sandbox(graded_folder(request.config), Limits(call_s=DEFAULT_TIMEOUT_S - 5))
    yield sealed
    sealed.close()


@pytest.fixture(scope="session")
def submission(request: pytest.FixtureRequest, sandbox: Sandbox) -> Callable[[str], object]:
    """``submission("ch15_capstone")``: that module of the graded code, run in the sandbox.

    Its functions take and return plain data (numbers, strings, lists, dicts, numpy arrays);
    other objects it returns stay in the sandbox and are asked about attribute by attribute.
    """
    folder = graded_folder(request.config)
    failed_imports: dict[str, str] = {}

    def load(module: str) -> object:
        if module in failed_imports:  # one hanging or crashing import costs its time once
            pytest.fail(failed_imports[module], pytrace=False)
        if not (folder / f"{module}.py").is_file():
            pytest.fail(f"{folder.name}/{module}.py is missing", pytrace=False)
        try:
            return sandbox.module(module)
        except SandboxError as error:
            failed_imports[module] = f"{folder.name}/{module}.py could not be imported: {error}"
        except Exception as error:
            failed_imports[module] = (f"{folder.name}/{module}.py could not be imported: "
                                      f"{type(error).__name__}: {error}")
        pytest.fail(failed_imports[module], pytrace=False)

    return load


@pytest.fixture(scope="session")
def probes(submission: Callable[[str], object], sandbox: Sandbox) -> Callable[[str], object]:
    """``probes("ch10")``: the grader's probes of Chapter 10, run in the sandbox.

    A probe (``autograder/probes/chNN.py``) does there what cannot cross, with the objects the
    submission makes (a model, an app, a tensor), and returns plain observations of it; the
    tests compare those with expected values computed here. Ask ``probes("chNN", "module")``
    to import the submission's module first, so that a broken import is reported as one.
    """

    def load(chapter: str, module: str | None = None) -> object:
        if module is not None:
            submission(module)
        try:
            return sandbox.probes(chapter)
        except SandboxError as error:
            pytest.fail(f"the grader's probes could not start: {error}", pytrace=False)

    return load


@pytest.fixture
def shared_path(sandbox: Sandbox) -> Path:
    """Like ``tmp_path``, a fresh folder for one test, but the sandboxed code may use it too.

    Read what the student's code says it wrote there with ``sandbox.received(path)``.
    """
    return Path(tempfile.mkdtemp(dir=sandbox.exchange))


@pytest.fixture(scope="session")
def graded_file(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``graded_file("ch07_docker/Dockerfile")``: a non-Python file of the code being graded.

    A file that still holds its TODO stub counts as not implemented, like a Python stub.
    """
    folder = graded_folder(request.config)

    def find(name: str) -> Path:
        path = folder / name
        if not path.is_file():
            pytest.fail(f"{folder.name}/{name} is missing", pytrace=False)
        stub = STUB.search(path.read_text(errors="replace"))
        if stub:
            raise NotImplementedError(f"{stub[1]} is not implemented yet: write it in "
                                      f"{folder.name}/{name}")
        return path

    return find


def _import_file(path: Path, name: str) -> ModuleType:
    """Import a submission's file that is not part of any package on sys.path."""
    if name in sys.modules:
        return sys.modules[name]
    if not path.exists():
        raise FileNotFoundError(f"the submission has no {path.name}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as dataclasses and pickling expect
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # so that every test reports the error, not just the first
        raise
    return module


@dataclass
class Result:
    chapter: str
    name: str
    max_score: float
    score: float = 0.0
    status: str = "failed"  # passed, failed, or withheld (cases only the instructor has)
    output: str = ""
    exercise: str = ""


@dataclass
class Gradebook:
    """Collects a score for every graded test and reports them at the end of the run."""

    config: pytest.Config
    results: dict[str, Result] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        chosen = self.config.getoption("exercise")
        kept, dropped = [], []
        for item in items:
            if AUTOGRADER not in Path(item.path).resolve().parents:
                kept.append(item)
                continue  # not a graded test (e.g. the project's own tests in the same run)
            marker = item.get_closest_marker("points")
            if marker is None:
                raise pytest.UsageError(f"{item.nodeid} has no @pytest.mark.points(n) marker")
            exercise = _exercise(item)
            if chosen and exercise not in chosen:
                dropped.append(item)
                continue
            kept.append(item)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_S))
            # Deprecation and similar warnings from torch and friends must never cost points.
            item.add_marker(pytest.mark.filterwarnings("ignore"))
            self.results[item.nodeid] = Result(_chapter_title(item), _test_title(item),
                                               float(marker.args[0]), exercise=exercise)
        if dropped:
            self.config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if report.failed and call.excinfo is not None and item.nodeid in self.results:
            report.longrepr = feedback(call.excinfo, item)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.results.get(report.nodeid)
        if result is None:
            return
        if report.when == "call" and report.passed:
            result.status, result.score = "passed", result.max_score
        elif report.failed:
            result.status, result.score = "failed", 0.0
            result.output = str(report.longrepr)
        elif report.skipped and result.status != "passed":
            reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple)
                         else report.longrepr)
            result.output = "skipped: " + reason
            if WITHHELD in reason:
                result.status, result.output = "withheld", WITHHELD

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.results:
            terminalreporter.write_sep("=", "score")
            terminalreporter.write_line(score_table(list(self.results.values())))

    def pytest_sessionfinish(self) -> None:
        path = self.config.getoption("gradescope")
        if path is not None:
            seconds = time.perf_counter() - self.started
            path.write_text(json.dumps(gradescope(list(self.results.values()), seconds), indent=2))


def _exercise(item: pytest.Item) -> str:
    """The exercise a graded test grades, from its ``exercise("N.M")`` marker."""
    marker = item.get_closest_marker("exercise")
    if marker is None or not marker.args or not EXERCISE.fullmatch(str(marker.args[0])):
        raise pytest.UsageError(f'{item.nodeid} has no @pytest.mark.exercise("N.M") marker')
    return str(marker.args[0])


def _chapter_title(item: pytest.Item) -> str:
    doc = (item.module.__doc__ if isinstance(item, pytest.Function) else None) or ""
    return doc.strip().splitlines()[0].rstrip(".") if doc.strip() else item.path.stem


def _test_title(item: pytest.Item) -> str:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    return doc.strip().splitlines()[0].rstrip(".") if doc.strip() else item.name


def feedback(excinfo: pytest.ExceptionInfo, item: pytest.Item) -> str:
    """A short account of a failure that guides the student without giving the answer away."""
    error = excinfo.value
    text = str(error)
    if isinstance(error, NotImplementedError) and "not implemented yet" in text:
        return text
    if isinstance(error, SandboxError):
        return text
    if excinfo.typename == "Failed" and text.startswith("Timeout"):
        marker = item.get_closest_marker("timeout")
        limit = marker.args[0] if marker and marker.args else DEFAULT_TIMEOUT_S
        return (f"Timed out after {limit} s: does your code wait for something that never "
                "comes, or loop forever?")
    if isinstance(error, AssertionError):
        # Keep the test's own message; drop pytest's comparison, which shows the expectation
        # (a bare failing ``assert x == pytest.approx(y)`` is nothing but that comparison).
        message = text.split("\nassert ")[0].strip()
        if message.startswith("assert ") or not message:
            return "A check of your result failed."
        return message
    if excinfo.typename == "Failed":
        return text
    if hasattr(error, "student_frames"):  # raised by the sealed code, in the sandbox
        kind = getattr(error, "kind", excinfo.typename)
        text = text.removeprefix(f"{kind}: ")
        return f"Your code raised {kind}: {text}\n" + _sandbox_frames(error, item)
    return f"Your code raised {excinfo.typename}: {text}\n" + _student_frames(excinfo, item)


def _sandbox_frames(error: Exception, item: pytest.Item) -> str:
    """The sandboxed traceback's lines in the submission, named as the student knows them."""
    folder = graded_folder(item.config)
    return "\n".join(f"  {folder.name}/{Path(path).name}:{line}: {text.strip()}"
                     for path, line, text in error.student_frames)


def _student_frames(excinfo: pytest.ExceptionInfo, item: pytest.Item) -> str:
    """Where the error happened in the graded package (the tests' own frames are left out)."""
    folder = graded_folder(item.config)
    lines = []
    for entry in excinfo.traceback:
        path = Path(str(entry.path))
        if folder in path.parents:
            lines.append(f"  {folder.name}/{path.relative_to(folder)}:{entry.lineno + 1}: "
                         f"{str(entry.statement).strip()}")
    return "\n".join(lines)


def score_table(results: list[Result]) -> str:
    """Points per chapter and in total, as a fixed-width table.

    Tests whose withheld cases this copy lacks count neither for nor against the local total;
    a note below the table says how many the instructor grades.
    """
    chapters: dict[str, list[Result]] = {}
    for result in results:
        chapters.setdefault(result.chapter, []).append(result)
    width = max(len(title) for title in [*chapters, "Total"])
    lines = [f"{'Chapter':<{width}}  {'passed':>8}  {'points':>9}"]
    for title, group in chapters.items():  # collection order: test_ch01, test_ch02, ...
        lines.append(_score_line(title, group, width))
    lines.append(_score_line("Total", results, width))
    withheld = [result for result in results if result.status == "withheld"]
    if withheld:
        points = sum(result.max_score for result in withheld)
        lines.append(f"{len(withheld)} more test(s), {points:g} point(s), "
                     f"{WITHHELD}: not counted here")
    return "\n".join(lines)


def _score_line(title: str, results: list[Result], width: int) -> str:
    counted = [result for result in results if result.status != "withheld"]
    passed = sum(result.status == "passed" for result in counted)
    score = sum(result.score for result in counted)
    possible = sum(result.max_score for result in counted)
    line = f"{title:<{width}}  {f'{passed}/{len(counted)}':>8}  {f'{score:g}/{possible:g}':>9}"
    held = len(results) - len(counted)
    return line + (f"  (+{held} {WITHHELD})" if held and title != "Total" else "")


def gradescope(results: list[Result], seconds: float) -> dict:
    """Gradescope's results.json: a total score and one entry per test, checked before use.

    Each score is clamped to its test's points; withheld tests a copy lacks are left out.
    Each entry names the exercise it grades (``"exercise": "N.M"``, from its marker).
    """
    tests = [
        {"name": f"{result.chapter}: {result.name}",
         "score": min(max(result.score, 0.0), result.max_score),
         "max_score": result.max_score, "status": result.status, "output": result.output,
         "exercise": result.exercise, "visibility": "visible"}
        for result in results if result.status != "withheld"
    ]
    document = {"score": sum(test["score"] for test in tests),
                "execution_time": round(seconds, 2), "output": score_table(results),
                "tests": tests}
    problems = results_problems(document)
    if problems:
        raise ValueError("invalid results: " + "; ".join(problems))
    return document
