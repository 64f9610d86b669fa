"""Take the README's screenshots of the built book (run `make book` first).

    python tools/screenshots.py           # writes docs/screenshots/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.browser import find_browser, screenshot, serve  # noqa: E402

PAGES = {"welcome.png": "book/00_welcome.html", "detector.png": "book/01_detector.html"}


def main() -> int:
    html, out = ROOT / "_build" / "html", ROOT / "docs" / "screenshots"
    browser = find_browser()
    if browser is None:
        print("error: no Chromium found; install it (Debian: apt-get install chromium)",
              file=sys.stderr)
        return 2
    if not (html / "index.html").exists():
        print("error: the book is not built; run `make book` first", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    with serve(html) as site:
        for name, page in PAGES.items():
            screenshot(browser, f"{site}/{page}", out / name)
            print(f"wrote {(out / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
