"""A pytest plugin that keeps what nbval executed: each notebook is saved with its outputs.

    pytest --nbval-lax -p tools.nbval_record --record-outputs _build/notebooks

nbval runs every cell and compares nothing in lax mode, then forgets the outputs. With
``--record-outputs`` each notebook file is rewritten with the outputs of this run, so that
``tools/seed_book_cache.py`` can hand them to the book build instead of running every chapter
a second time.
"""

from __future__ import annotations

import nbformat
import pytest

RECORDED = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-outputs", action="store_true",
                     help="save each notebook nbval ran with the outputs of this run")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDED] = {}  # notebook file node -> number of cells run so far


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    finally:
        outputs = getattr(item, "test_outputs", None)  # set by nbval's IPyNbCell.runtest
        if item.config.getoption("record_outputs") and outputs is not None:
            run = item.config.stash[RECORDED]
            run[item.parent] = run.get(item.parent, 0) + 1
            item.cell.outputs = outputs
            item.cell.execution_count = run[item.parent]
            for output in outputs:
                if output.output_type == "execute_result":
                    output.execution_count = run[item.parent]


def pytest_sessionfinish(session: pytest.Session) -> None:
    for notebook in session.config.stash.get(RECORDED, {}):
        nbformat.write(notebook.nb, str(notebook.path))
