"""The edge chapter's in-browser detector, in headless Chromium, against ONNX Runtime in Python.

The page computes a probability for every gallery portrait when it loads; each must match what
ONNX Runtime in Python computes on the same PNG file with the same ONNX model (both shipped in the
built book), and give the same verdict. Run after `make book`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup

from tests.programs import require
from tools.browser import find_browser, rendered_dom, serve
from vampire_detector.images import from_png
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import LABELS

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
PAGE = "book/11_edge.html"
DEMO = HTML / "edge-demo"
TOLERANCE = 1e-4
# Virtual time stands still while the page waits on its files and WebAssembly, so the budget is
# large; the dump comes as soon as the page has nothing left to do (a few seconds here).
BUDGET_MS = 1_000_000

# A page that opens the chapter in a frame, hands its demo a file that is no image, and copies
# what the demo said into its own DOM (Chromium's --dump-dom only shows the top document).
HARNESS = """<!DOCTYPE html><html><body><pre id="report">waiting</pre>
<iframe id="chapter" src="html/{page}" width="900" height="600"></iframe>
<script>
const frame = document.getElementById("chapter");
frame.addEventListener("load", async () => {{
  const demo = frame.contentWindow.vampireDemo;
  await demo.ready;
  const junk = new File([new Uint8Array([137, 80, 78, 71, 1, 2, 3, 4, 5])], "garlic.png",
                        {{ type: "image/png" }});
  const outcome = await demo.handleFile(junk);
  const status = frame.contentDocument.querySelector("#vampire-demo .vd-status");
  document.getElementById("report").textContent = JSON.stringify({{
    outcome, message: status.textContent, error: status.classList.contains("vd-error"),
    state: frame.contentDocument.getElementById("vampire-demo").dataset.state }});
}});
</script></body></html>"""


@pytest.fixture(scope="module")
def browser() -> str:
    if not (HTML / PAGE).exists() or not (DEMO / "portraits" / "portraits.json").exists():
        pytest.fail("the book or its demo files are not built: run `make book` first")
    return require(find_browser(), "a Chromium-family browser (apt-get install chromium)")


def settled_dom(browser: str, url: str, settled: Callable[[BeautifulSoup], bool],
                attempts: int = 8) -> BeautifulSoup:
    """The page's DOM once ``settled`` says its scripts finished, asking again up to ``attempts``.

    Headless Chromium may dump a page while its WebAssembly still compiles on another thread: on
    a busy machine that can take longer than the page's own tasks, so one dump is not enough.
    """
    for _ in range(attempts):
        dom = BeautifulSoup(rendered_dom(browser, url, BUDGET_MS), "html.parser")
        if settled(dom):
            break
    return dom


def demo_settled(dom: BeautifulSoup) -> bool:
    demo = dom.select_one("#vampire-demo")
    return demo is None or demo.get("data-state") not in (None, "", "loading")


@pytest.fixture(scope="module")
def page(browser) -> BeautifulSoup:
    with serve(HTML) as url:
        return settled_dom(browser, f"{url}/{PAGE}", demo_settled)


def test_the_demo_starts_and_judges_the_first_portrait(page):
    demo = page.select_one("#vampire-demo")
    assert demo is not None, "the chapter page has no demo"
    status = demo.select_one(".vd-status").get_text()
    assert demo.get("data-state") == "ready", f"the demo did not start: {status}"
    assert demo.select_one(".vd-verdict")["data-label"] in LABELS
    assert "ms" in demo.select_one(".vd-latency").get_text()


def test_browser_probabilities_match_onnx_runtime_in_python(page):
    buttons = page.select("#vampire-demo .vd-gallery button")
    assert len(buttons) >= 20, f"only {len(buttons)} portraits in the gallery"
    images = np.stack([from_png((DEMO / button["data-file"]).read_bytes()) for button in buttons])
    python = OrtDetector(DEMO / "model" / "vampirenet.onnx").probabilities(images)
    vampire = LABELS.index("vampire")
    browser = np.array([float(button["data-vampire-probability"]) for button in buttons])
    difference = np.abs(browser - python[:, vampire])
    assert difference.max() < TOLERANCE, (
        f"the browser and Python differ by up to {difference.max():.2e} "
        f"(portrait {int(difference.argmax()) + 1})")
    assert ((browser > 0.5) == (python.argmax(1) == vampire)).all(), "a verdict differs"


def test_the_manifest_carries_the_library_preprocessing():
    from vampire_detector.images import MEAN, STD

    manifest = json.loads((DEMO / "portraits" / "portraits.json").read_text())
    assert (manifest["mean"], manifest["std"], manifest["size"]) == (list(MEAN), list(STD), 64)


def test_a_file_that_is_no_image_gets_a_clear_message(browser, tmp_path):
    os.symlink(HTML, tmp_path / "html")
    (tmp_path / "harness.html").write_text(HARNESS.format(page=PAGE))
    with serve(tmp_path) as url:
        dom = settled_dom(browser, f"{url}/harness.html",
                          lambda dom: dom.select_one("#report").get_text() != "waiting")
    report = json.loads(dom.select_one("#report").get_text())
    assert report["outcome"] == "refused" and report["error"], report
    assert "Could not read" in report["message"] and "garlic.png" in report["message"]
    assert report["state"] == "ready", "the demo broke after a bad file"
