"""Write each chapter's Colab notebook, book/NN_name.ipynb, from its MyST source book/NN_name.md.

    python tools/sync_notebooks.py           # rewrite the notebooks
    python tools/sync_notebooks.py --check   # exit 1 if a notebook is missing or out of date

The MyST file is the chapter; the notebook exists because Colab opens only .ipynb files. It gets
one extra first cell that, inside Colab only, installs the course package from the repository
named in _config.yml (Colab's own PyTorch is kept), and asks Colab for a GPU runtime. Outputs
are never stored, and cell ids are numbered, so the same chapter always gives the same file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

from vampire_detector.paths import course_root

ROOT = course_root()

SETUP = '''\
# Colab only: clone the course (its deploy/ files are read by later chapters) and install the
# package next to Colab's own PyTorch, then report the device.
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", "{url}", "/content/course"],
                   check=False)  # already cloned when the notebook is run a second time
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e",
                    "/content/course[course]"], check=True)  # every extra the chapters import
    sys.path.insert(0, "/content/course")  # an editable install is only seen by new processes
    from vampire_detector.device import pick_device

    print("Course package installed; running on", pick_device())'''


def repository_url(root: Path = ROOT) -> str:
    """The course repository, as configured for the book's buttons in _config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def notebook_text(chapter: Path, url: str) -> str:
    """The .ipynb text for the MyST chapter ``chapter``."""
    notebook = jupytext.read(chapter, fmt="md:myst")
    setup = nbformat.v4.new_code_cell(SETUP.format(url=url))
    notebook.cells.insert(0, setup)
    for number, cell in enumerate(notebook.cells):
        cell.id = f"{chapter.stem}-{number:03d}"
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["accelerator"] = "GPU"  # Colab then offers a GPU runtime
    notebook.metadata["colab"] = {"provenance": []}
    return nbformat.writes(notebook) + "\n"


def notebook_chapters(book: Path) -> list[Path]:
    """The MyST files of ``book`` that are notebooks (they name a kernel); others are prose."""
    return [chapter for chapter in sorted(book.glob("*.md"))
            if "kernelspec" in jupytext.read(chapter, fmt="md:myst").metadata]


def expected_notebooks(book: Path, url: str) -> dict[Path, str]:
    return {chapter.with_suffix(".ipynb"): notebook_text(chapter, url)
            for chapter in notebook_chapters(book)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when a notebook is out of date")
    parser.add_argument("--book", type=Path, default=ROOT / "book")
    args = parser.parse_args(argv)
    expected = expected_notebooks(args.book, repository_url(args.book.parent))
    stale = sorted(set(args.book.glob("*.ipynb")) - set(expected))
    if not args.check:
        for path, text in expected.items():
            path.write_text(text)
        for path in stale:
            path.unlink()
        print(f"wrote {len(expected)} notebooks")
        return 0
    problems = [f"out of date: {path.relative_to(args.book.parent)}"
                for path, text in expected.items()
                if not path.exists() or path.read_text() != text]
    problems += [f"no chapter for: {path.relative_to(args.book.parent)}" for path in stale]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the Colab notebooks are out of sync with the chapters: run `make notebooks-sync`",
              file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
