"""The deployment checks reuse the graders' parsers (autograder/test_ch0[789]_*.py), which carry
the autograder's ``points`` marker; registered here, importing them raises no warning."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): the points a graded test is worth")
