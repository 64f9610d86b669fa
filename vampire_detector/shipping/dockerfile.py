"""Dockerfiles read without Docker: their instructions, their final stage, and hadolint's verdict.

Introduced in Chapter 7.

There is no Docker engine on the course's machines, so the chapters and the graders check a
Dockerfile the way a reviewer would: parse it, look at what the shipped stage does, lint it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HADOLINT = Path(sys.executable).with_name("hadolint")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str
    line: int


def instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, with continuation lines joined and comments dropped."""
    found, pending, start = [], "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        start = start or number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
        pending, start = "", 0
    return found


def final_stage(found: list[Instruction]) -> list[Instruction]:
    """The instructions of the last stage: what the image that ships is made of."""
    starts = [i for i, instruction in enumerate(found) if instruction.keyword == "FROM"]
    return found[starts[-1]:] if starts else found


def exec_form(args: str) -> list[str] | None:
    """``["a", "b"]`` as a list; None for the shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def env_vars(stage: list[Instruction]) -> dict[str, str]:
    """Every variable the stage's ENV instructions set (``K=V ...`` and the old ``K V``)."""
    env: dict[str, str] = {}
    for instruction in (i for i in stage if i.keyword == "ENV"):
        words = shlex.split(instruction.args)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
            continue
        env.update(word.split("=", 1) for word in words if "=" in word)
    return env


def copy_args(instruction: Instruction) -> tuple[list[str], str, dict[str, str]]:
    """The sources, the destination and the flags of a COPY or ADD."""
    words = exec_form(instruction.args) or shlex.split(instruction.args)
    flags = dict(w[2:].split("=", 1) if "=" in w else (w[2:], "") for w in words
                 if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1], paths[-1], flags


def context_sources(found: list[Instruction]) -> list[str]:
    """What COPY and ADD take from the build context (not from another stage)."""
    return [source for i in found if i.keyword in {"COPY", "ADD"}
            for source in copy_args(i)[0] if "from" not in copy_args(i)[2]]


def option(command: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command, if given."""
    for index, word in enumerate(command):
        if word == name and index + 1 < len(command):
            return command[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def hadolint(path: Path) -> list[dict]:
    """hadolint's findings for ``path``; inline ``# hadolint ignore`` comments do not count."""
    result = subprocess.run([str(HADOLINT), "--disable-ignore-pragma", "-f", "json", str(path)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"hadolint could not read {path.name}: {result.stderr.strip()}")
    return json.loads(result.stdout or "[]")
