"""Fixtures every project test may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from vampire_detector.paths import course_root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the course's clone (where ``_toc.yml`` and ``deploy/`` are)."""
    return course_root()
