"""One execution per chapter in `make test`: nbval's outputs are kept and the book reuses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
from jupyter_cache import get_cache
from myst_nb.core.read import read_myst_markdown_notebook

from tools.seed_book_cache import main, seed
from vampire_detector.paths import course_root

ROOT = course_root()
CHAPTER = """\
---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A night at the gate

```{code-cell} ipython3
print("a traveller arrives")
```

```{code-cell} ipython3
6 * 7
```
"""


def executed(folder: Path) -> Path:
    """The chapter above, converted as `make notebooks` does and run by nbval with the plugin."""
    notebook = folder / "gate.ipynb"
    jupytext.write(jupytext.reads(CHAPTER, fmt="md:myst"), notebook)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "tools.nbval_record",
         "--record-outputs", "-p", "no:cacheprovider", "-q", str(notebook)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    return notebook


def test_nbval_keeps_the_outputs_and_the_book_finds_them(tmp_path):
    notebook = executed(tmp_path)
    cells = nbformat.read(notebook, as_version=4).cells
    assert cells[1].outputs[0].text == "a traveller arrives\n"
    assert cells[2].outputs[0].data["text/plain"] == "42"
    assert [cell.execution_count for cell in cells[1:]] == [1, 2]

    assert seed([notebook], tmp_path / "cache") == 1
    as_the_book_reads_it = read_myst_markdown_notebook(CHAPTER)
    record = get_cache(str(tmp_path / "cache")).match_cache_notebook(as_the_book_reads_it)
    assert record is not None, "the book build would not find the recorded execution"


def test_an_execution_already_cached_is_kept(tmp_path):
    notebook = executed(tmp_path)
    assert seed([notebook], tmp_path / "cache") == 1
    assert seed([notebook], tmp_path / "cache") == 0


def test_without_notebooks_it_says_what_to_run(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "make notebooks" in capsys.readouterr().err
