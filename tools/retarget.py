"""Point every link of the course at a fork: the book's buttons, badges, clone and install URLs.

    python tools/retarget.py my-school/deploying-pytorch [--branch spring-2027]

The repository configured in _config.yml is the one the course currently points at; every
mention of it in the files git tracks (GitHub, GitHub Pages, Colab and Binder links) is rewritten
for the fork, and the Colab notebooks follow because they are rewritten the same way.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from vampire_detector.paths import course_root

ROOT = course_root()
SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def current_target(root: Path) -> tuple[str, str]:
    """The ``owner/name`` and branch the course points at now."""
    repository = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    match = re.match(r"https://github\.com/([^/]+/[^/]+?)/?$", repository["url"])
    if not match:
        raise ValueError(f"_config.yml's repository.url is not a GitHub URL: {repository['url']}")
    return match[1], repository.get("branch", "main")


def replacements(old: str, new: str, old_branch: str, new_branch: str) -> list[tuple[str, str]]:
    """Literal rewrites, most specific first, so a branch is only changed inside our own URLs."""
    (old_owner, old_name), (new_owner, new_name) = old.split("/"), new.split("/")
    pairs = [(f"{old}/blob/{old_branch}/", f"{new}/blob/{new_branch}/"),
             (f"{old}/tree/{old_branch}", f"{new}/tree/{new_branch}"),
             (f"{old}/{old_branch}?", f"{new}/{new_branch}?"),  # Binder's /v2/gh/owner/name/branch?
             (f"{old_owner}.github.io/{old_name}", f"{new_owner}.github.io/{new_name}"),
             (old, new)]
    return [(a, b) for a, b in pairs if a != b]


def tracked_text_files(root: Path) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                            check=True).stdout.decode().split("\0")
    files = []
    for name in filter(None, listed):
        path = root / name
        try:
            path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # weights, images, deleted files
        files.append(path)
    return files


def retarget(root: Path, new: str, new_branch: str | None = None) -> list[Path]:
    """Rewrite the tracked files of ``root`` for the fork ``new``; return the files changed."""
    if not SLUG.match(new):
        raise ValueError(f"{new!r} is not a GitHub repository: write it as owner/name")
    old, old_branch = current_target(root)
    pairs = replacements(old, new, old_branch, new_branch or old_branch)
    if new_branch:
        pairs.append((f"  branch: {old_branch}\n", f"  branch: {new_branch}\n"))
    return rewrite(tracked_text_files(root), pairs)


def rewrite(paths: Iterable[Path], pairs: list[tuple[str, str]]) -> list[Path]:
    """Apply every ``(before, after)`` to the text files among ``paths``; return those changed."""
    changed = []
    for path in paths:
        try:
            text = original = path.read_text()
        except (UnicodeDecodeError, IsADirectoryError):
            continue  # binary files and folders carry no links
        for before, after in pairs:
            text = text.replace(before, after)
        if text != original:
            path.write_text(text)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", help="the fork, as owner/name")
    parser.add_argument("--branch", default=None, help="the fork's default branch, if not main")
    args = parser.parse_args(argv)
    try:
        changed = retarget(ROOT, args.repository, args.branch)
    except (ValueError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"rewrote {path.relative_to(ROOT)}")
    print(f"{len(changed)} files now point at {args.repository}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
