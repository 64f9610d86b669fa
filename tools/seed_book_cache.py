"""Hand notebooks that were already executed to the book build's cache.

    python tools/seed_book_cache.py _build/notebooks

Jupyter Book (``execute_notebooks: cache``) looks each chapter up in its jupyter-cache by a
hash of its code cells and kernel, and runs only the chapters it does not find. ``make test``
executes every chapter once under nbval (``tools/nbval_record.py`` keeps the outputs); this
puts those executions in the cache, so the book build that follows renders them instead of
running every chapter again. A chapter whose code differs from every cached copy is simply
executed by the build, as usual.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.base import CachingError

CACHE = Path("_build/.jupyter_cache")  # where Jupyter Book keeps it for a build in _build/html


def seed(notebooks: list[Path], cache: Path = CACHE) -> int:
    """Cache the executed notebooks; an execution of the same code already there is kept."""
    store, added = get_cache(str(cache)), 0
    for notebook in notebooks:
        try:
            store.cache_notebook_file(str(notebook), check_validity=False)
            added += 1
        except CachingError:  # the same code is cached already (perhaps a full run): keep it
            pass
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of executed .ipynb files")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    notebooks = sorted(args.folder.glob("*.ipynb"))
    if not notebooks:
        print(f"error: no executed notebooks in {args.folder}; run `make notebooks` first",
              file=sys.stderr)
        return 2
    added = seed(notebooks, args.cache)
    print(f"{args.cache}: {added} of {len(notebooks)} executed notebooks added "
          f"({len(notebooks) - added} were cached already)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
