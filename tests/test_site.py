"""The course site (``make site``): it builds offline without a warning, and works in a real browser.

The build is Sphinx with myst-nb and sphinx-book-theme (Jupyter Book 1's stack), from the
notebooks' committed outputs, with every warning an error. The checks open the built
site in Chromium with every request to another host blocked and recorded: the index and
each chapter load, each chapter's figures decode, the learning goals and time estimate
open each chapter, every heading has a link, the exercises' answers start folded, math
renders, search finds a chapter, and no request leaves the machine. Links are checked on
the files themselves, so every internal link and anchor of every page is covered.

Skipped, saying how to install them, where the site's packages are missing (they are an
extra: ``pip install -e .[site]``, which ``make site`` installs); in CI, which installs
them, that is a failure (``tests/needed.py``).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import nbformat
import needed
import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from playwright import sync_api

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["book/index", "book/about", "book/instructors", "book/speed", "book/reference-results"]
#: Attributes through which a page loads something (an <a href> is only followed when clicked).
LOADING = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src")}

SITE_PACKAGES = ("sphinx", "myst_nb", "sphinx_book_theme")


@pytest.fixture(scope="module", autouse=True)
def site_packages() -> None:
    """The site's extra, which ``make site`` installs: skipped without it, failed in CI."""
    absent = [name for name in SITE_PACKAGES if importlib.util.find_spec(name) is None]
    if absent:
        needed.missing(f"the site's packages are not installed ({', '.join(absent)})",
                       "make site (or pip install -e '.[site]')")


def build(output: Path) -> subprocess.CompletedProcess:
    """Build the site into ``output`` as ``make site`` does, every warning an error."""
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(output / ".doctrees"), "-c", "book", ".", str(output)],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("site")
    result = build(output)
    assert result.returncode == 0, f"the site did not build cleanly:\n{result.stderr[-4000:]}"
    return output


class Links(HTMLParser):
    """Collect a page's ids, the links it follows (``<a href>``) and the files it loads."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.followed: list[str] = []
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("id", "name"):
            if values.get(name):
                self.ids.add(values[name])
        if tag == "a" and values.get("href"):
            self.followed.append(values["href"])
        self.loaded += [values[attr] for t, attr in LOADING if t == tag and values.get(attr)]


def parsed(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def site_pages(site: Path) -> list[Path]:
    """Return the site's pages: its HTML files, less the themes' templates in _static and the build's doctrees."""
    return [path for path in site.rglob("*.html") if not {".doctrees", "_static"} & set(path.relative_to(site).parts)]


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def broken_links(site: Path) -> list[str]:
    """Return each internal link (page#anchor) of the site whose file or anchor does not exist."""
    pages = {path: parsed(path) for path in site_pages(site)}
    problems = []
    for page, links in pages.items():
        for url in links.followed + links.loaded:
            if not is_local(url) or url.startswith(("mailto:", "javascript:")):
                continue
            target, anchor = urldefrag(url)
            file = (page.parent / unquote(urlsplit(target).path)).resolve() if target else page
            if file.is_dir():
                file = file / "index.html"
            if not file.exists():
                problems.append(f"{page.relative_to(site)}: {url} (no such file)")
            elif anchor and file.suffix == ".html" and unquote(anchor) not in (
                    pages[file].ids if file in pages else parsed(file).ids):
                problems.append(f"{page.relative_to(site)}: {url} (no such anchor)")
    return problems


def test_the_site_has_every_chapter_and_page(site):
    for name in [f"notebooks/{p.stem}" for p in NOTEBOOKS] + PAGES:
        assert (site / f"{name}.html").exists(), name
    assert "book/index.html" in (site / "index.html").read_text()


def test_every_internal_link_and_anchor_resolves(site):
    assert broken_links(site) == []


def test_a_broken_link_is_found(site, tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<a href="#here" id="here">ok</a><a href="missing.html">x</a><a href="page.html#nowhere">y</a>')
    assert broken_links(tmp_path) == ["page.html: missing.html (no such file)",
                                      "page.html: page.html#nowhere (no such anchor)"]


def test_no_page_loads_a_file_from_another_host(site):
    outside = {str(p.relative_to(site)): [u for u in parsed(p).loaded if not is_local(u)]
               for p in site_pages(site)}
    assert {page: urls for page, urls in outside.items() if urls} == {}


def test_model_answers_are_folded(site):
    """nbgrader's solution cells are tagged hide-input (folded code), and the open questions' answers are <details>."""
    html = (site / "notebooks" / "01_noise_and_data.html").read_text()
    solutions = sum(1 for p in NOTEBOOKS for c in nbformat.read(p, 4).cells
                    if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    folded = sum((site / "notebooks" / f"{p.stem}.html").read_text().count('class="cell tag_hide-input')
                 for p in NOTEBOOKS)
    assert solutions >= 9 and folded == solutions
    assert "<summary>Model answer</summary>" in html and "<details open" not in html


def png_outputs(notebook: Path) -> int:
    """Return how many of a notebook's outputs are pictures (figures, and the explorers' still pictures)."""
    cells = nbformat.read(notebook, 4).cells
    return sum("image/png" in output.get("data", {}) for cell in cells for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def browser_page(site):
    """A Chromium page on the site, served on localhost, with every request to another host blocked and kept."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    blocked: list[str] = []

    def route(request_route) -> None:
        if request_route.request.url.startswith(base):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.route("**/*", route)
        yield page, base, blocked
        browser.close()
    server.shutdown()


def open_page(browser_page, path: str):
    page, base, _ = browser_page
    response = page.goto(base + path)
    assert response is not None and response.ok, path
    page.wait_for_load_state("networkidle")
    return page


@needs_chromium
def test_a_request_to_another_host_is_blocked_and_seen(browser_page):
    page, _, blocked = browser_page
    open_page(browser_page, "book/index.html")
    page.evaluate("() => fetch('http://example.invalid/font.woff2').catch(() => null)")
    assert blocked == ["http://example.invalid/font.woff2"]
    blocked.clear()


IMAGES = """() => Array.from(document.querySelectorAll('article img')).map(
    img => ({src: img.getAttribute('src'), width: img.naturalWidth, shown: img.getBoundingClientRect().width}))"""
HEADINGS = """() => Array.from(document.querySelectorAll('article section > h2, article section > h3')).map(
    h => ({id: h.parentElement.id, link: !!h.querySelector('a.headerlink')}))"""


@needs_chromium
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_chapter_loads_with_its_figures_goals_and_linkable_headings(browser_page, notebook):
    page = open_page(browser_page, f"notebooks/{notebook.stem}.html")
    images = page.evaluate(IMAGES)
    assert len(images) == png_outputs(notebook) > 0
    assert [img["src"] for img in images if img["width"] == 0 or img["shown"] == 0] == []
    opening = page.locator("article").inner_text()[:3000]
    assert "Learning goals" in opening and "Time:" in opening
    headings = page.evaluate(HEADINGS)
    assert len(headings) >= 5 and all(h["id"] and h["link"] for h in headings)
    # Each model answer's code is folded: present in the page, not shown until opened.
    solutions = sum(1 for c in nbformat.read(notebook, 4).cells
                    if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    folded = page.locator("div.tag_hide-input")
    assert folded.count() == solutions > 0
    for index in range(solutions):
        answer = folded.nth(index).get_by_text("BEGIN SOLUTION").first
        assert answer.count() == 1 and not answer.is_visible()


@needs_chromium
def test_the_index_and_the_pages_load(browser_page):
    page = open_page(browser_page, "")
    assert page.url.endswith("book/index.html")
    assert page.locator("nav a", has_text="Clustering the latent codes").count() >= 1
    for name in PAGES[1:]:
        page = open_page(browser_page, f"{name}.html")
        assert page.locator("article h1").count() == 1


@needs_chromium
def test_math_renders_from_the_site_itself(browser_page):
    page = open_page(browser_page, "notebooks/02_model_and_batchnorm.html")
    page.wait_for_selector("mjx-container", timeout=15_000)
    assert page.locator("mjx-container").count() >= 3


@needs_chromium
def test_search_finds_notebook_5(browser_page):
    page = open_page(browser_page, "search.html?q=Hungarian")
    page.wait_for_selector("#search-results ul.search li", timeout=15_000)
    results = page.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")
    assert any("notebooks/05_clustering.html" in url for url in results)


@needs_chromium
def test_no_page_makes_a_request_to_another_host(browser_page):
    """Every page, chapter and a search, opened here (not relying on the tests above): nothing leaves the machine."""
    _, _, blocked = browser_page
    blocked.clear()
    for path in ["", *(f"{name}.html" for name in PAGES), *(f"notebooks/{p.stem}.html" for p in NOTEBOOKS)]:
        open_page(browser_page, path)
    page = open_page(browser_page, "search.html?q=Hungarian")
    page.wait_for_selector("#search-results ul.search li", timeout=15_000)
    page = open_page(browser_page, "notebooks/02_model_and_batchnorm.html")
    page.wait_for_selector("mjx-container", timeout=15_000)
    assert blocked == []
