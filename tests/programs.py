"""Tests that need a program outside Python: skipped on a laptop without it, failed in CI."""

from __future__ import annotations

import os

import pytest


def require(program: str | None, install: str) -> str:
    """Return the program's path; without it, skip (or fail when ``CI`` is set)."""
    if program is None:
        message = f"not installed: {install}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return program
