"""Headless Chromium for checking the built book: serve it on loopback, render, screenshot."""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and quiet: no sync, updates or other calls to the outside world, which is closed here.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH, if any."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port for as long as the block runs; yield its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _run(browser: str, *args: str, timeout: float = 60) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                                capture_output=True, text=True, timeout=timeout, check=True)
    return result.stdout


def rendered_dom(browser: str, url: str, wait_ms: int = 5000) -> str:
    """The page's DOM after its scripts ran for up to ``wait_ms`` of virtual time."""
    return _run(browser, f"--virtual-time-budget={wait_ms}", "--dump-dom", url)


def screenshot(browser: str, url: str, out: Path, size: tuple[int, int] = (1280, 860)) -> None:
    """Save a PNG of ``url`` as a reader with a laptop-sized window would see it."""
    _run(browser, "--virtual-time-budget=5000", f"--window-size={size[0]},{size[1]}",
         f"--screenshot={out.resolve()}", url)
