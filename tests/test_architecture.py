"""The import rules of ``.importlinter`` hold, cover every module, and would catch a breach."""

from __future__ import annotations

import ast
import configparser
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vampire_detector

PACKAGE = Path(vampire_detector.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
BLOCK_TORCH = """
import sys
for name in ("torch", "torchvision", "torchao", "onnx", "onnxscript"):
    sys.modules[name] = None  # `import torch` now raises ImportError, as without PyTorch
import vampire_detector.service.app as app
import vampire_detector.service.lambda_handler
print(sorted(app.get_paths()))
"""


def contracts(repo_root: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(repo_root / ".importlinter")
    return parser


def listed(section: configparser.SectionProxy, key: str) -> set[str]:
    return set(section[key].split())


def test_the_harness_rule_names_every_other_module(repo_root):
    """A new module must join the list, or the rule would silently not apply to it."""
    section = contracts(repo_root)["importlinter:contract:harness"]
    modules = {f"vampire_detector.{module.name}"
               for module in pkgutil.iter_modules(vampire_detector.__path__)}
    assert listed(section, "source_modules") == modules - {"vampire_detector.harness"}


def test_the_service_imports_and_builds_without_pytorch():
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "/ready" in result.stdout


@pytest.mark.parametrize("breach", ["import torch",
                                    "from vampire_detector.harness import launch",
                                    "from vampire_detector import weights"])
def test_lint_imports_fails_when_the_service_breaks_a_rule(repo_root, tmp_path, breach):
    shutil.copytree(repo_root / "vampire_detector", tmp_path / "vampire_detector",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    shutil.copy(repo_root / ".importlinter", tmp_path)
    uploads = tmp_path / "vampire_detector" / "service" / "uploads.py"
    uploads.write_text(uploads.read_text() + f"\n{breach}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "The shipped service imports only the torch-free core BROKEN" in result.stdout
    assert "vampire_detector.service.uploads" in result.stdout


def test_lint_imports_passes_on_the_library(repo_root):
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]


def test_every_library_module_names_the_chapter_that_introduces_it():
    """As d2l does: a reader who meets a module knows where the book explains it."""
    silent = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
              if path.name != "__init__.py"
              and not re.search(r"Chapters? \d+", ast.get_docstring(ast.parse(path.read_text()))
                                or "")]
    assert not silent, f"no 'Chapter N' in the docstring of {silent}"
