"""The image builder's plumbing; `make images` builds, runs and probes the real images."""

from __future__ import annotations

import hashlib
import json

import pytest

from vampire_detector.harness import images


def test_the_tag_names_the_model_by_its_content(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"vampirenet")
    assert images.model_digest(model) == hashlib.sha256(b"vampirenet").hexdigest()[:12]


def test_docker_is_preferred_and_buildah_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(images.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(images.subprocess, "run", lambda *a, **k: type("R", (), {
        "returncode": 1})())  # `docker info`: no engine answers
    builder = images.find_builder(tmp_path / "storage")
    assert builder.name == "buildah"
    assert builder.prefix[builder.prefix.index("--root") + 1] == str(tmp_path / "storage")
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    assert images.find_builder() is None


@pytest.mark.parametrize(("said", "size"), [("460 MB", 460_000_000), ("1.5 GB", 1_500_000_000),
                                            ("812 kB", 812_000)])
def test_buildah_sizes_are_read_in_bytes(monkeypatch, said, size):
    monkeypatch.setattr(images, "run", lambda command, **kwargs: json.dumps([{"size": said}]))
    assert images.Builder("buildah", ("buildah",)).size("x") == size


def test_a_failing_builder_command_says_what_it_said():
    with pytest.raises(RuntimeError, match="no such image"):
        images.run(["sh", "-c", "echo no such image >&2; exit 3"])


@pytest.mark.skipif(images.shutil.which("buildah") is None, reason="buildah is not installed")
def test_prune_removes_stale_course_tags_and_nothing_else(tmp_path):
    builder = images.find_builder(tmp_path / "storage")
    if builder.name != "buildah":
        pytest.skip("pruning is tried on a storage of its own, which only buildah has here")
    old, new = "vampire-detector:0123456789ab", "vampire-detector:ba9876543210"
    kept = ["course-python:3.11", "vampire-detector:1.0.0", new, f"{new}-cuda"]
    for tag in [old, f"{old}-cuda", *kept]:
        container = images.run([*builder.prefix, "from", "scratch"]).strip()
        images.run([*builder.prefix, "commit", "--rm", container, f"localhost/{tag}"])
    images.run([*builder.prefix, "from", old])  # a leftover container of a stale image
    removed = builder.prune(["vampire-detector"], keep=[new, f"{new}-cuda"])
    assert sorted(removed) == [old, f"{old}-cuda"]
    assert sorted(builder.tags()) == sorted(kept)  # a tag given by hand stays
    assert builder.prune(["vampire-detector"], keep=[new, f"{new}-cuda"]) == []
