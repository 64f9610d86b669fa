"""Checks that several chapters' graded tests share, each with feedback for the student."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autograder.sandbox import SandboxError


def refusal(call: Callable[[], object], what: str, why: str) -> str:
    """The message of the ``ValueError`` that ``call`` must raise for ``what``; a failure that
    says ``why`` when it raises something else or nothing."""
    try:
        call()
    except ValueError as error:
        return str(error)
    except (NotImplementedError, SandboxError):
        raise
    except Exception as error:
        pytest.fail(f"{what} raised {type(error).__name__} ({str(error)[:200]}), not "
                    f"ValueError: {why}", pytrace=False)
    pytest.fail(f"{what} was accepted: {why}", pytrace=False)
