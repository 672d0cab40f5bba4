"""The built book: it builds with warnings as errors, shows no tracebacks, and works in a real browser.

The book is built once per test session (``jupyter-book build`` with ``-W -n --keep-going``,
which executes every chapter at its default ``smoke`` profile) into a temporary folder.

How the browser checks work. Headless Chromium opens every page of the table of contents twice:

1. A copy of the page, saved next to it so relative links resolve, with a small probe script
   inserted at the top of ``<head>``. The probe records every resource that fails to load
   (``error`` events caught in the capture phase: images, scripts, stylesheets) and every
   uncaught script error; after the ``load`` event and MathJax's startup promise it calls
   ``decode()`` on every ``<img>`` (lazy ones are switched to eager first), which resolves only
   for an image the browser actually fetched and decoded. It then writes a JSON report into the
   DOM. ``--dump-dom`` prints the DOM after the scripts ran (``--virtual-time-budget`` gives
   MathJax time to typeset), and the test reads the report and the visible text from it.
2. The unmodified page, for a 1280×1600 screenshot saved under ``_build/screenshots/``.

On each page: maths typeset by the vendored MathJax (at least one ``mjx-container`` per maths
element Sphinx wrote, no ``mjx-merror``), no raw TeX delimiters left in the visible text, every
image decodes, no failed resource or script error, and a screenshot that is not blank.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from book_layout import REPO, toc_pages

from ggcn.__main__ import available_chapters

pytestmark = pytest.mark.book

MATHJAX = REPO / "_vendor" / "mathjax" / "tex-mml-chtml.js"
SCREENSHOTS = REPO / "_build" / "screenshots"
BROWSERS = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--hide-scrollbars", "--virtual-time-budget=8000",
]
TRACEBACK = "Traceback (most recent call last)"
# Script errors that Jupyter Book 1 itself causes on every page and that change nothing for a reader.
KNOWN_SCRIPT_ERRORS = {
    # sphinx-thebe 0.3 registers its inline config script twice under Sphinx 7; the first copy
    # already defines the same constants, and thebe is not used by this book.
    "script error: Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared",
}


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """Build the book once; returns (exit code, log, html folder)."""
    if not MATHJAX.is_file():
        pytest.fail(f"MathJax is not vendored ({MATHJAX.relative_to(REPO)} is missing): run `make mathjax`")
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    proc = subprocess.run(
        [str(jupyter_book), "build", str(REPO), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=3600,
    )
    print(f"book build: exit {proc.returncode} in {time.perf_counter() - start:.0f} s")
    return proc.returncode, proc.stdout + proc.stderr, out / "_build" / "html"


def test_book_builds_with_warnings_as_errors(build):
    code, log, _ = build
    assert code == 0, "jupyter-book build -W failed; end of its log:\n" + log[-6000:]


def test_every_page_of_the_toc_and_every_chapter_is_built(build):
    _, _, html = build
    expected = set(toc_pages()) | {f"notebooks/{p.stem}" for p in available_chapters()}
    missing = sorted(page for page in expected if not (html / f"{page}.html").is_file())
    assert not missing, f"pages missing from the built book: {missing}"


def test_no_page_shows_a_traceback_or_a_python_warning(build):
    _, _, html = build
    problems = []
    for page in sorted(html.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        if TRACEBACK in text or re.search(r'class="[^"]*\btraceback\b', text):
            problems.append(f"{page.relative_to(html)}: error output")
        for block in re.findall(r'<div class="[^"]*\bstderr\b.*?</div>', text, flags=re.S):
            if re.search(r"\w*Warning:", block):
                problems.append(f"{page.relative_to(html)}: a warning printed to the reader")
    assert not problems, "\n".join(problems)


def test_status_page_lists_each_chapter_with_its_run_time(build):
    _, _, html = build
    status = (html / "book" / "status.html").read_text(encoding="utf-8")
    rows = {row for row in re.findall(r"<tr.*?</tr>", status, flags=re.S)}
    for chapter in available_chapters():
        row = next((r for r in rows if f"notebooks/{chapter.stem}" in r), None)
        assert row is not None, f"the execution table on book/status does not list {chapter.stem}"
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td.*?</td>", row, flags=re.S)]
        assert re.fullmatch(r"\d+(\.\d+)?", cells[3]), f"no run time for {chapter.stem}: {cells}"
        assert cells[4] == "✅", f"{chapter.stem} did not run cleanly: {cells}"


# ---------------------------------------------------------------- browser

PROBE = """<script>(function () {
  var failed = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) failed.push("could not load " + (t.src || t.href));
    else failed.push("script error: " + e.message);
  }, true);
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.images, function (img) { img.loading = "eager"; });
  });
  function report() {
    var images = Array.prototype.map.call(document.images, function (img) {
      return img.decode().then(function () { return {src: img.currentSrc || img.src, ok: true}; },
                               function () { return {src: img.currentSrc || img.src, ok: false}; });
    });
    Promise.all(images).then(function (imgs) {
      var out = document.createElement("script");
      out.type = "application/json";
      out.id = "ggcn-probe";
      out.textContent = JSON.stringify({
        failed: failed, images: imgs, mathjax: !!(window.MathJax && window.MathJax.startup),
        typeset: document.querySelectorAll("mjx-container").length,
        errors: document.querySelectorAll("mjx-merror").length});
      document.body.appendChild(out);
    });
  }
  window.addEventListener("load", function () {
    var startup = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    if (startup) startup.then(report, function (err) { failed.push("MathJax: " + err); report(); });
    else report();
  });
})();</script>"""

RAW_TEX = [
    (r"\\\(|\\\)", r"\( \)"),
    (r"\\\[|\\\]", r"\[ \]"),
    (r"\$\$", "$$"),
    (r"\\begin\{", r"\begin{"),
    (r"\$[^$\n]*\\[A-Za-z]+[^$\n]*\$", "$...\\command...$"),
    (r"\{[a-z]+(:[a-z-]+)?\}`", "a MyST role"),
]


class VisibleText(HTMLParser):
    """Text a reader sees as prose: outside scripts, styles, code and typeset maths."""

    SKIP = {"script", "style", "pre", "code", "mjx-container", "svg", "noscript", "textarea", "template"}

    def __init__(self):
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def chromium() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.fail("no chromium on PATH: run `make chromium` (Debian: apt-get install chromium)")
    return found


def open_page(browser: str, url: str, profile: Path, *action: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("page", toc_pages())
def test_page_works_in_a_real_browser(build, page, tmp_path):
    browser = chromium()
    _, _, html = build
    source = html / f"{page}.html"
    assert source.is_file(), f"{page}.html was not built"
    text = source.read_text(encoding="utf-8")

    probe_page = source.with_name(source.stem + ".probe.html")
    probe_page.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    dumped = open_page(browser, probe_page.as_uri(), tmp_path / "dom", "--dump-dom")
    probe_page.unlink()
    found = re.search(r'<script type="application/json" id="ggcn-probe">(.*?)</script>', dumped.stdout, re.S)
    assert found, f"the probe did not report for {page}; chromium said:\n{dumped.stderr[-3000:]}"
    report = json.loads(found.group(1))

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / (page.replace("/", "__") + ".png")
    shot.unlink(missing_ok=True)
    open_page(browser, source.as_uri(), tmp_path / "shot", f"--screenshot={shot}", "--window-size=1280,1600")

    failed = [f for f in report["failed"] if f not in KNOWN_SCRIPT_ERRORS]
    assert not failed, f"{page}: {failed}"
    broken = [img["src"] for img in report["images"] if not img["ok"]]
    assert not broken, f"{page}: images that do not load: {broken}"
    maths = len(re.findall(r'class="math[ "]', text))
    if maths:
        assert report["mathjax"], f"{page} has maths but MathJax did not start (is _vendor/mathjax served?)"
        assert report["typeset"] >= maths, f"{page}: {maths} maths elements, {report['typeset']} typeset"
        assert report["errors"] == 0, f"{page}: MathJax could not parse {report['errors']} formula(s)"
    parser = VisibleText()
    parser.feed(dumped.stdout)
    visible = " ".join(parser.parts)
    raw = [name for pattern, name in RAW_TEX if re.search(pattern, visible)]
    assert not raw, f"{page}: raw markup left in the visible text: {raw}"
    assert_not_blank(shot)


def assert_not_blank(png: Path) -> None:
    from PIL import Image

    assert png.is_file() and png.stat().st_size > 0, f"chromium wrote no screenshot {png}"
    grey = Image.open(png).convert("L")
    histogram = grey.histogram()
    assert max(histogram) < 0.98 * sum(histogram), f"screenshot {png} is (nearly) one colour"
