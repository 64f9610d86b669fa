"""The GitHub workflows run only what exists: Make targets, scripts and their options.

A workflow runs on GitHub, not here; what can be checked here is that every command it names is
one the repository has, with options its parser accepts, so a renamed flag fails this test
rather than the release.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted((Path(__file__).resolve().parent.parent / ".github" / "workflows").glob("*.yml"))


def runs(workflow: Path) -> list[str]:
    """Every ``run:`` script of every job, in order."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]


def make_targets(repo_root: Path) -> set[str]:
    text = (repo_root / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_job_has_a_time_limit(workflow: Path) -> None:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    assert all("timeout-minutes" in job for job in jobs.values()), workflow.name


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_make_target_a_workflow_names_exists(workflow: Path, repo_root: Path) -> None:
    targets = make_targets(repo_root)
    for script in runs(workflow):
        for called in re.findall(r"\bmake ((?:[a-z][\w-]* ?)+)", script):
            missing = [t for t in called.split() if "=" not in t and t not in targets]
            assert not missing, f"{workflow.name} runs make {missing}, which the Makefile lacks"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_script_and_option_a_workflow_names_exists(workflow: Path,
                                                         repo_root: Path) -> None:
    for script in runs(workflow):
        script = script.replace("\\\n", " ")
        for command in re.findall(r"python (-m [\w.]+|[\w/]+\.py)([^\n|;&]*)", script):
            target, rest = command
            if target.startswith("-m "):
                invocation = [sys.executable, "-m", target[3:]]
            else:
                assert (repo_root / target).is_file(), f"{workflow.name}: no {target}"
                invocation = [sys.executable, str(repo_root / target)]
            helped = subprocess.run([*invocation, "--help"], cwd=repo_root, capture_output=True,
                                    text=True, timeout=120)
            assert helped.returncode == 0, helped.stderr
            for option in re.findall(r"(?<!\S)(--[a-z][\w-]*)", rest):
                assert option in helped.stdout, f"{workflow.name}: {target} has no {option}"


def test_the_release_waits_for_a_person_before_promoting() -> None:
    release = yaml.safe_load((WORKFLOWS[0].parent / "release.yml").read_text())
    promote = release["jobs"]["promote"]
    assert promote["needs"] == "gate" and promote["environment"] == "production"
    assert release["concurrency"]["cancel-in-progress"] is False
