"""The build context that ``docker build`` sends, as a .dockerignore shapes it.

Introduced in Chapter 7.

Docker's rules: the last matching line wins, "!" lets a path back in, and a pattern that matches
a folder matches everything inside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def _pattern(text: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over slash-separated relative paths.

    As Docker reads it: ``*`` and ``?`` stop at a slash, ``**`` crosses any number of folders,
    ``[...]`` is a class of characters (``*.py[cod]``) and a backslash escapes the next one.
    """
    text = os.path.normpath(text.strip()).lstrip("/")
    out, i = "", 0
    while i < len(text):
        if text.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        elif text[i] == "[" and (end := text.find("]", i + 2)) != -1:
            out, i = out + "[" + text[i + 1:end].replace("\\", "\\\\") + "]", end + 1
        elif text[i] == "\\" and i + 1 < len(text):
            out, i = out + re.escape(text[i + 1]), i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(text[i], re.escape(text[i]))
            i += 1
    return re.compile(out)


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str], str]]:
    """(is an exception, pattern, the pattern's text) for every rule of a .dockerignore."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        body = line[1:].strip() if negated else line
        rules.append((negated, _pattern(body), os.path.normpath(body).lstrip("/")))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str], str]]) -> bool:
    """Whether Docker leaves ``relative`` out: the last rule matching it or a parent decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negated, pattern, _ in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def _may_hold_exceptions(folder: str, rules: list[tuple[bool, re.Pattern[str], str]]) -> bool:
    """Whether an exception ("!") rule could let back in something inside an ignored folder."""
    for negated, _, text in rules:
        literal = re.split(r"[*?\[]", text)[0]
        if negated and (not literal or literal.startswith(folder + "/")):
            return True
    return False


def build_context(root: Path, dockerignore: str) -> list[str]:
    """The files (relative, sorted) that ``docker build`` would send from ``root``."""
    rules = ignore_rules(dockerignore)
    kept = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = [d for d in dirs if not is_ignored(prefix + d, rules)
                   or _may_hold_exceptions(prefix + d, rules)]
        kept += [prefix + f for f in files if not is_ignored(prefix + f, rules)]
    return sorted(kept)
