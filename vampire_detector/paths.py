"""Where things are: the course's folders, and files that must exist before they are used.

Introduced with the tooling in Chapter 0 and used from Chapter 4 on. The library runs from a
clone of the course (``pip install -e .``, the Colab cell, CI) and from an installed wheel (the
serving image). Only a clone has ``deploy/`` and ``book/``, so ``course_root`` looks for the
clone from the working folder upwards, then beside the package, and says what to do when there
is none, instead of guessing a path that is wrong in a wheel.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT_ENV = "VAMPIRE_COURSE_ROOT"  # set it to use a clone from anywhere
PACKAGE_DIR = Path(__file__).resolve().parent
MARKERS = ("_toc.yml", "deploy")  # what only the course's root folder has


def _is_course_root(folder: Path) -> bool:
    return all((folder / marker).exists() for marker in MARKERS)


def course_root() -> Path:
    """The root of the course's clone: ``$VAMPIRE_COURSE_ROOT``, or found by its markers."""
    if os.environ.get(ROOT_ENV):
        root = Path(os.environ[ROOT_ENV]).resolve()
        if not _is_course_root(root):
            raise FileNotFoundError(f"{ROOT_ENV}={root} is not the course's folder "
                                    f"(it has no {' or '.join(MARKERS)})")
        return root
    for start in (Path.cwd().resolve(), PACKAGE_DIR):
        for folder in (start, *start.parents):
            if _is_course_root(folder):
                return folder
    raise FileNotFoundError("the course's files (deploy/, book/) are not here: run this from "
                            f"a clone of the course, or set {ROOT_ENV} to its folder")


def deploy_dir() -> Path:
    """The deployment files: Dockerfiles, the Lambda template, manifests, Prometheus rules."""
    return course_root() / "deploy"


def require_file(path: str | Path, what: str = "ONNX model",
                 remedy: str = "export one with vampire_detector.onnx_export.export_onnx()"
                 ) -> Path:
    """``path`` as a ``Path`` if it is a file, else a ``FileNotFoundError`` saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}; {remedy}")
    return path


def scratch_dir(prefix: str) -> Path:
    """A new empty folder for a chapter's files, removed when this Python process ends.

    The chapters export models, write archives and start servers that log: hundreds of MB a
    run, which a plain ``mkdtemp`` would leave in ``/tmp`` at every run of every notebook.
    The folder goes when the kernel shuts down (Jupyter's shutdown lets ``atexit`` run; a
    kernel that is killed leaves it, and ``make notebooks`` gives its kernels a ``TMPDIR`` of
    their own that it removes afterwards).
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
