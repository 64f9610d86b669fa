"""``pip install "vampire-detector[extra]"`` gives each part of the library what it imports."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib

import vampire_detector

PACKAGE = Path(vampire_detector.__file__).parent
EXTRA_OF = {"service": "serve", "harness": "harness", "shipping": "shipping"}  # package: extra
SERVING_ADAPTER = "torch_serving.py"  # a core module around the service: it needs both
# Single modules whose dependencies are large or optional, each with the extra that serves it:
# ExecuTorch (Chapter 11), MLflow and the rollback receiver that acts on it (Chapter 13), the
# platforms' adapters and their client (14), LitServe's app (14; the harness starts it as its
# own program).
OWN_EXTRA = {"edge.py": "edge", "registry.py": "registry", "rollback.py": "registry",
             "platforms.py": "harness", "harness/litserve_app.py": "servers"}


def requirement_names(requirements: list[str], extras: dict[str, list[str]]) -> set[str]:
    """Distribution names, with ``vampire-detector[a,b]`` self-references expanded."""
    names = set()
    for requirement in requirements:
        name = normal(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
        if name == "vampire-detector":
            for extra in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= requirement_names(extras[extra.strip()], extras)
        else:
            names.add(name)
    return names


def normal(name: str) -> str:
    return name.lower().replace("_", "-")


def part_files(part: str) -> list[Path]:
    if part == "core":
        return [p for p in PACKAGE.glob("*.py") if p.name not in (SERVING_ADAPTER, *OWN_EXTRA)]
    if part in OWN_EXTRA:
        return [PACKAGE / part]
    own = {PACKAGE / name for name in OWN_EXTRA}
    return [*(p for p in (PACKAGE / part).rglob("*.py") if p not in own),
            *([PACKAGE / SERVING_ADAPTER] * (part == "service"))]


def third_party_imports(files: list[Path]) -> set[str]:
    """Top-level names imported by ``files`` that are neither ours nor the standard library's."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "vampire_detector"}


@pytest.fixture(scope="module")
def project(repo_root) -> dict:
    return tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("part", ["core", *EXTRA_OF, *OWN_EXTRA])
def test_each_part_declares_what_it_imports(project, part):
    extras = project["optional-dependencies"]
    declared = requirement_names(project["dependencies"], extras)
    if part != "core":
        declared |= requirement_names(extras[{**EXTRA_OF, **OWN_EXTRA}[part]], extras)
    distributions = packages_distributions()
    missing = {name for name in third_party_imports(part_files(part))
               if not {normal(d) for d in distributions.get(name, [name])} & declared}
    assert not missing, f"{part} imports {sorted(missing)} without declaring them"


def test_the_course_extra_installs_every_part(project):
    extras = project["optional-dependencies"]
    course = requirement_names(extras["course"], extras)
    for extra in {*EXTRA_OF.values(), *OWN_EXTRA.values()}:
        assert requirement_names(extras[extra], extras) <= course
