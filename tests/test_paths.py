"""Where things are, and scratch folders that do not pile up in /tmp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vampire_detector.paths import ROOT_ENV, course_root, require_file


def test_the_course_root_is_found_and_a_wrong_override_is_named(monkeypatch, tmp_path):
    assert (course_root() / "_toc.yml").is_file()
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=ROOT_ENV):
        course_root()


def test_a_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="export one"):
        require_file(tmp_path / "absent.onnx")


def test_a_scratch_folder_is_gone_when_python_ends(tmp_path):
    program = ("from vampire_detector.paths import scratch_dir\n"
               "folder = scratch_dir('chapter-')\n"
               "(folder / 'model.onnx').write_bytes(b'x' * 1000)\n"
               "print(folder)\n")
    made = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=True, env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          cwd=Path(__file__).resolve().parent.parent)
    folder = Path(made.stdout.strip())
    assert folder.parent == tmp_path and folder.name.startswith("chapter-")
    assert not folder.exists()
