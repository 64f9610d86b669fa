"""Fixtures every project test may use."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from vampire_detector.model import PRODUCTION_ARCH
from vampire_detector.paths import course_root
from vampire_detector.portraits import make_portraits
from vampire_detector.train import ensure_weights


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the course's clone (where ``_toc.yml`` and ``deploy/`` are)."""
    return course_root()


@pytest.fixture
def own_tmpdir(tmp_path, monkeypatch) -> Path:
    """An empty folder that is this test's temporary folder (``tempfile``'s, and ``TMPDIR`` for
    the processes it starts): what is left in it afterwards, something left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def portraits() -> np.ndarray:
    """Eight test portraits, the same in every test."""
    return make_portraits(8, seed=31)[0]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Train the production weights, if missing, before any test's timeout starts ticking.

    ``make test`` does it first (``make weights-cache``); this covers a bare ``pytest tests``.
    """
    ensure_weights(PRODUCTION_ARCH, log=lambda line: print(line, flush=True))
