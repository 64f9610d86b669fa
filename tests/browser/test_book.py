"""The built book, as a reader's browser shows it (run after `make book`)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml
from bs4 import BeautifulSoup

from tests.programs import require
from tools.browser import find_browser, rendered_dom, serve
from tools.sync_notebooks import notebook_chapters
from vampire_detector.paths import course_root

ROOT = course_root()
HTML = ROOT / "_build" / "html"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *(chapter["file"] for chapter in toc.get("chapters", []))]


def chapter_pages() -> list[str]:
    """The pages built from notebooks: they have code outputs and launch buttons."""
    notebooks = {f"book/{path.stem}" for path in notebook_chapters(ROOT / "book")}
    return [page for page in toc_pages() if page in notebooks]


def test_every_page_of_the_toc_is_built():
    missing = [page for page in toc_pages() if not (HTML / f"{page}.html").exists()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


@pytest.fixture(scope="module")
def browser() -> str:
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first")
    return require(find_browser(), "a Chromium-family browser (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(browser):
    with serve(HTML) as url:
        yield url


def render(browser: str, url: str, wait_ms: int = 5000) -> BeautifulSoup:
    return BeautifulSoup(rendered_dom(browser, url, wait_ms), "html.parser")


@pytest.mark.parametrize("page", chapter_pages())
def test_chapter_renders_with_executed_outputs(browser, site, page):
    dom = render(browser, f"{site}/{page}.html")
    assert dom.select_one("main h1"), f"{page}: no title rendered"
    outputs = dom.select("div.cell_output")
    assert outputs, f"{page}: no executed code outputs on the page"
    errors = dom.select("div.cell_output .traceback, div.cell_output .output.stderr .ansi-red-fg")
    assert not errors, f"{page}: an output shows an error"


def test_chapter_one_shows_accuracy_and_timing_tables(browser, site):
    dom = render(browser, f"{site}/book/01_detector.html")
    text = dom.get_text(" ")
    assert re.search(r"held-out accuracy 9\d\.\d\d%", text)
    headers = [table.get_text(" ") for table in dom.select("div.cell_output table")]
    assert any("p99 ms" in header and "items/s" in header for header in headers)


# The figures each page draws from its own measurements, by the caption printed under each.
FIGURES = {
    "book/01_detector": ["Figure 1.1", "Figure 1.2"],
    "book/02_tracing": ["Figure 2.1"],
    "book/03_export": ["Figure 3.1", "Figure 3.2"],
    "book/04_onnx": ["Figure 4.1"],
    "book/05_quantization": ["Figure 5.1"],
    "book/06_service": ["Figure 6.1", "Figure 6.2"],
    "book/07_docker": ["Figure 7.1"],
    "book/08_lambda": ["Figure 8.1"],
    "book/09_kubernetes": ["Figure 9.1"],
    "book/10_monitoring": ["Figure 10.1"],
    "book/12_security": ["Figure 12.1", "Figure 12.2", "Figure 12.3"],
    "book/13_release": ["Figure 13.1", "Figure 13.2"],
    "book/14_servers": ["Figure 14.1", "Figure 14.2"],
    "book/15_capstone": ["Figure 15.1", "Figure 15.2", "Figure 15.3"],
}


@pytest.mark.parametrize("page", sorted(FIGURES))
def test_every_figure_is_drawn_above_its_caption(browser, site, page):
    dom = render(browser, f"{site}/{page}.html")
    for figure in FIGURES[page]:
        caption = next((p for p in dom.select("main p") if p.get_text().startswith(figure)),
                       None)
        assert caption is not None, f"{page}: no caption for {figure}"
        cell = caption.find_previous("div", class_="cell")
        image = cell.select_one("div.cell_output img") if cell else None
        assert image is not None, f"{page}: {figure} has no image in the cell above its caption"
        assert image.get("src", "").endswith(".png"), f"{page}: {figure} is not a PNG image"


def test_search_finds_the_chapters(browser, site):
    dom = render(browser, f"{site}/search.html?q=vampire", wait_ms=8000)
    hits = [link["href"] for link in dom.select("ul.search li a")]
    assert any("01_detector" in hit for hit in hits), f"search results: {hits}"


@pytest.mark.parametrize("page", chapter_pages())
def test_launch_buttons_open_files_that_exist(browser, site, page):
    dom = render(browser, f"{site}/{page}.html")
    links = [a["href"] for a in dom.select("a[href]")]
    colab = [link for link in links if "colab.research.google.com/github/" in link]
    binder = [link for link in links if "mybinder.org/v2/gh/" in link]
    assert colab and binder, f"{page}: missing a Colab or Binder launch button"
    for link in colab:
        path = urlparse(link).path.split("/blob/", 1)[1].split("/", 1)[1]  # after the branch
        assert (ROOT / path).is_file(), f"the Colab button opens {path}, which does not exist"
    for link in binder:
        path = parse_qs(urlparse(link).query)["urlpath"][0].split("/tree/", 1)[1]
        assert (ROOT / unquote(path)).is_file(), f"the Binder button opens {path}: no such file"


def test_every_internal_link_resolves():
    broken = []
    for page in HTML.rglob("*.html"):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for anchor in soup.select("a[href]"):
            href = anchor["href"]
            if urlparse(href).scheme or href.startswith(("mailto:", "#", "javascript:")):
                continue
            target, _, fragment = href.partition("#")
            file = (page.parent / unquote(target)).resolve()
            if not file.exists():
                broken.append(f"{page.relative_to(HTML)} -> {href}")
            elif fragment and file.suffix == ".html" and f'id="{fragment}"' not in file.read_text():
                broken.append(f"{page.relative_to(HTML)} -> {href} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)
