"""Fixtures every project test may use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vampire_detector.paths import course_root
from vampire_detector.portraits import make_portraits


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the course's clone (where ``_toc.yml`` and ``deploy/`` are)."""
    return course_root()


@pytest.fixture(scope="session")
def portraits() -> np.ndarray:
    """Eight test portraits, the same in every test."""
    return make_portraits(8, seed=31)[0]
