"""The built book: it builds with warnings as errors, shows no tracebacks, and works in a real browser;
and the artifacts that chapters record through :mod:`ggcn.book.artifacts`.

The build and browser tests are marked ``book`` (slowest); the artifact tests at the end are
not marked and run in ``make test-fast``.

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
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
from book_layout import REPO, toc_pages

from ggcn.book import artifacts as book
from ggcn.__main__ import available_chapters
from ggcn.book.artifacts import (BrokenArtifact, UnwritableArtifacts, artifact_folder, code_hashes, load_artifact, load_or_run,
                       manifest, recorded, run_key, save_artifact)

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
    """Build the book once (`make test` keeps this file on one worker: `--dist loadfile`); returns (exit
    code, log, html folder)."""
    if not MATHJAX.is_file():
        pytest.fail(f"MathJax is not vendored ({MATHJAX.relative_to(REPO)} is missing): run `make mathjax`")
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    env = {**os.environ, "GGCN_PROFILE": "smoke"}  # every chapter executed (make book shows teach instead)
    env.pop("GGCN_ACCEPT_RECORDED", None)
    proc = subprocess.run(
        [str(jupyter_book), "build", str(REPO), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=3600, env=env,
    )
    print(f"book build: exit {proc.returncode} in {time.perf_counter() - start:.0f} s")
    return proc.returncode, proc.stdout + proc.stderr, out / "_build" / "html"


@pytest.mark.book
def test_book_builds_with_warnings_as_errors(build):
    code, log, _ = build
    assert code == 0, "jupyter-book build -W failed; end of its log:\n" + log[-6000:]


@pytest.mark.book
def test_every_page_of_the_toc_and_every_chapter_is_built(build):
    _, _, html = build
    expected = set(toc_pages()) | {f"notebooks/{p.stem}" for p in available_chapters()}
    missing = sorted(page for page in expected if not (html / f"{page}.html").is_file())
    assert not missing, f"pages missing from the built book: {missing}"


@pytest.mark.book
@pytest.mark.parametrize("chapter", available_chapters(), ids=[p.stem for p in available_chapters()])
def test_each_chapter_ran_every_cell_cleanly_and_made_its_figures(build, chapter):
    """The build is the one execution of every chapter: its executed notebook shows every code
    cell ran, none raised, and the chapter glued figures for its pages."""
    _, _, html = build
    executed = html.parent / "jupyter_execute" / "notebooks" / f"{chapter.stem}.ipynb"
    assert executed.is_file(), f"the build left no executed notebook for {chapter.stem}"
    cells = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code" and c.source.strip()]
    assert cells, f"{chapter.stem} has no code cells"
    not_run = [i for i, cell in enumerate(cells) if cell.execution_count is None]
    assert not not_run, f"{chapter.stem}: code cells that did not run: {not_run}"
    errors = [out.get("ename") for cell in cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"{chapter.stem} raised {errors}"
    glued = json.loads(executed.with_name(f"{chapter.stem}.glue.json").read_text())
    figures = [name for name, bundle in glued.items() if "image/png" in bundle.get("data", {})]
    assert figures, f"{chapter.stem} glued no figure"


@pytest.mark.book
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


@pytest.mark.book
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
    // After "load" every image has been fetched: a broken one has no natural size. (Waiting on
    // img.decode() instead raced the DOM dump: decoding runs off the virtual clock.)
    var imgs = Array.prototype.map.call(document.images, function (img) {
      return {src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0};
    });
    var out = document.createElement("script");
    out.type = "application/json";
    out.id = "ggcn-probe";
    out.textContent = JSON.stringify({
      failed: failed, images: imgs, mathjax: !!(window.MathJax && window.MathJax.startup),
      typeset: document.querySelectorAll("mjx-container").length,
      errors: document.querySelectorAll("mjx-merror").length});
    document.body.appendChild(out);
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


def linked_file(page: Path, label: str) -> Path:
    """The file that the link with text ``label`` on ``page`` points to."""
    hrefs = re.findall(rf'<a [^>]*href="([^"]+)"[^>]*>{re.escape(label)}</a>', page.read_text(encoding="utf-8"))
    assert len(hrefs) == 1, f"{page.name} has {len(hrefs)} links '{label}'"
    return (page.parent / hrefs[0]).resolve()


@pytest.mark.book
@pytest.mark.parametrize("chapter", available_chapters(), ids=[p.stem for p in available_chapters()])
def test_each_chapter_page_links_its_executed_notebook_and_its_student_notebook(build, chapter):
    _, _, html = build
    page = html / "notebooks" / f"{chapter.stem}.html"
    executed = linked_file(page, "executed notebook (.ipynb)")
    student = linked_file(page, "student notebook without solutions (.ipynb)")
    assert executed.is_file() and student.is_file(), f"{chapter.stem}: a linked notebook is missing"
    executed_cells = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    assert any(cell.outputs for cell in executed_cells), f"the executed {chapter.stem} has no outputs"
    student_cells = [c for c in nbformat.read(student, as_version=4).cells if c.cell_type == "code"]
    assert not any(cell.outputs for cell in student_cells), f"the student {chapter.stem} has outputs"


def chromium() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.fail("no chromium on PATH: run `make chromium` (Debian: apt-get install chromium)")
    return found


def open_page(browser: str, url: str, profile: Path, *action: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.book
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


# ---------------------------------------------------------------- artifacts (ggcn.book.artifacts)

PARAMS = {"profile": "teach", "seed": 0, "device": "cpu", "data_root": None, "size": 16}
CHAPTER = "01_demo"


class Runs:
    """A chapter's ``run``: counts its calls and tags what it returns with the call's number."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"call": self.calls}, {"grid": np.full((3, 3), self.calls)}


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """``GGCN_ARTIFACTS`` in a temporary folder, and code (package, chapter source) that a test may edit."""
    package, notebooks = tmp_path / "package", tmp_path / "notebooks"
    package.mkdir()
    notebooks.mkdir()
    (package / "model.py").write_text("LR = 0.1\n")
    (notebooks / f"{CHAPTER}.md").write_text("# A chapter\n")
    monkeypatch.setattr(book, "PACKAGE", package)
    monkeypatch.setattr(book, "NOTEBOOKS", notebooks)
    monkeypatch.setenv("GGCN_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv("GGCN_ACCEPT_RECORDED", raising=False)
    return tmp_path / "artifacts"


def edit_code(artifacts, part):
    """Change the package (``part="package"``) or the chapter source (``part="chapter"``)."""
    edited = book.PACKAGE / "model.py" if part == "package" else book.NOTEBOOKS / f"{CHAPTER}.md"
    edited.write_text(edited.read_text() + "# edited\n")


DAMAGE = {
    "truncated arrays": lambda d: (d / "arrays.npz").write_bytes((d / "arrays.npz").read_bytes()[:40]),
    "empty arrays": lambda d: (d / "arrays.npz").write_bytes(b""),
    "unreadable metrics": lambda d: (d / "metrics.json").write_text('{"call": '),
    "missing manifest": lambda d: (d / "manifest.json").unlink(),
}


def test_a_run_is_recorded_whole_in_the_folder_of_its_key(artifacts):
    runs = Runs()
    first = load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    folder = artifacts / CHAPTER / "teach" / run_key(PARAMS, "cpu")
    assert first.path == folder and not first.loaded
    assert sorted(p.name for p in (artifacts / CHAPTER / "teach").iterdir()) == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "manifest.json", "metrics.json"]
    assert first.manifest["code"] == code_hashes(CHAPTER)

    again = load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    assert runs.calls == 1 and again.loaded and not again.other_code
    assert again.metrics == first.metrics
    np.testing.assert_array_equal(again.arrays["grid"], first.arrays["grid"])


def test_smoke_results_are_always_recomputed(artifacts):
    runs = Runs()
    for _ in range(2):
        result = load_or_run(CHAPTER, {**PARAMS, "profile": "smoke"}, runs, device="cpu")
    assert runs.calls == 2 and not result.loaded and result.metrics == {"call": 2}


def test_a_run_that_fails_while_writing_leaves_nothing_to_reuse(artifacts, monkeypatch):
    runs = Runs()

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(np, "savez_compressed", disk_full)
        with pytest.raises(OSError, match="disk full"):
            load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    left = list((artifacts / CHAPTER / "teach").iterdir())
    assert left == [], "a half-written artifact (or its temporary folder) is left"

    result = load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    assert runs.calls == 2 and not result.loaded


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_broken_recorded_artifact_is_rerun_and_replaced(artifacts, damage, caplog):
    runs = Runs()
    folder = load_or_run(CHAPTER, PARAMS, runs, device="cpu").path
    damage(folder)
    with caplog.at_level(logging.WARNING, logger="ggcn.book.artifacts"):
        rerun = load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    assert runs.calls == 2 and not rerun.loaded
    assert str(folder) in caplog.text and "rerunning" in caplog.text

    replaced = load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    assert runs.calls == 2 and replaced.loaded and replaced.metrics == {"call": 2}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_reading_a_broken_artifact_names_its_folder_and_the_fix(artifacts, damage):
    folder = load_or_run(CHAPTER, PARAMS, Runs(), device="cpu").path
    damage(folder)
    where = re.escape(str(folder))
    with pytest.raises(BrokenArtifact, match=rf"{where} is broken .*delete {where} and rerun"):
        load_artifact(folder)


@pytest.mark.parametrize("change", [{"seed": 7}, {"size": 32}, {"data_root": "/data/faces"}, {"device": "cuda"}],
                         ids=["seed", "parameter", "data root", "device kind"])
def test_another_seed_parameter_data_root_or_device_kind_is_another_run(artifacts, change):
    runs = Runs()
    other = {**PARAMS, **change}
    load_or_run(CHAPTER, PARAMS, runs, device=PARAMS["device"])
    made = load_or_run(CHAPTER, other, runs, device=other["device"])
    assert runs.calls == 2 and not made.loaded
    assert len(list((artifacts / CHAPTER / "teach").iterdir())) == 2, "the two runs must not share a folder"
    assert load_or_run(CHAPTER, PARAMS, runs, device=PARAMS["device"]).metrics == {"call": 1}
    assert load_or_run(CHAPTER, other, runs, device=other["device"]).metrics == {"call": 2}
    assert runs.calls == 2


def test_the_key_knows_the_device_kind_not_the_card(artifacts):
    assert run_key(PARAMS, "cuda:0") == run_key(PARAMS, "cuda:1") != run_key(PARAMS, "cpu")
    assert run_key(dict(reversed(PARAMS.items())), "cpu") == run_key(PARAMS, "cpu")


@pytest.mark.parametrize("part", ["package", "chapter"])
def test_a_recording_by_other_code_is_rerun_and_the_log_says_how_to_accept_it(artifacts, part, caplog):
    runs = Runs()
    load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    edit_code(artifacts, part)
    with caplog.at_level(logging.WARNING, logger="ggcn.book.artifacts"):
        result = load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    assert runs.calls == 2 and not result.loaded
    assert "other code" in caplog.text and "GGCN_ACCEPT_RECORDED=1" in caplog.text


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_an_accepted_recording_by_other_code_says_so_in_its_provenance(artifacts, how, monkeypatch):
    runs = Runs()
    old = load_or_run(CHAPTER, PARAMS, runs, device="cpu").manifest["code"]["package"]
    edit_code(artifacts, "package")
    new = code_hashes(CHAPTER)["package"]
    if how == "environment":
        monkeypatch.setenv("GGCN_ACCEPT_RECORDED", "1")
    result = load_or_run(CHAPTER, PARAMS, runs, device="cpu", accept_recorded=True if how == "argument" else None)
    assert runs.calls == 1 and result.loaded
    line = result.provenance()
    assert "recorded with other code" in line and old[:8] in line and new[:8] in line
    assert "chapter" not in result.other_code, "only the package changed"


def test_two_writers_of_one_key_each_leave_a_whole_artifact(artifacts):
    folder = artifact_folder(CHAPTER, PARAMS, "cpu")
    man = manifest(CHAPTER, PARAMS, "cpu", 0.0)
    writes, seen, errors = 25, [], []

    def write(writer):
        for n in range(writes):
            save_artifact(folder, {"writer": writer, "n": n}, {"v": np.full(20_000, 1000 * writer + n)}, man)

    def read(stop):
        while not stop.is_set():
            try:
                got = load_artifact(folder)
            except FileNotFoundError:
                continue
            except Exception as err:  # noqa: BLE001 - any failure to read a whole artifact is the finding
                errors.append(repr(err))
                continue
            seen.append((1000 * got.metrics["writer"] + got.metrics["n"], set(np.unique(got.arrays["v"]))))

    writers = [threading.Thread(target=write, args=(w,)) for w in (1, 2)]
    stop = threading.Event()
    reader = threading.Thread(target=read, args=(stop,))
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()

    assert not errors, errors[:3]
    assert seen, "the reader never saw an artifact"
    mixed = [(tag, values) for tag, values in seen if values != {tag}]
    assert not mixed, f"metrics and arrays from different writes: {mixed[:3]}"
    last = load_artifact(folder).metrics
    assert last["n"] == writes - 1 and last["writer"] in (1, 2)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name], "temporary folders were left behind"


def test_an_unwritable_artifacts_folder_stops_before_the_run_and_says_what_to_do(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GGCN_ARTIFACTS", str(blocker / "artifacts"))
    runs = Runs()
    with pytest.raises(UnwritableArtifacts) as raised:
        load_or_run(CHAPTER, PARAMS, runs, device="cpu")
    assert runs.calls == 0, "the run must not start when its result cannot be recorded"
    message = str(raised.value)
    assert str(blocker / "artifacts" / CHAPTER / "teach") in message
    assert f"GGCN_ARTIFACTS={blocker / 'artifacts'}" in message and "set GGCN_ARTIFACTS to a writable folder" in message


def test_recorded_lists_the_complete_artifacts_of_a_chapter_newest_first(artifacts, caplog):
    days = {1: "2026-01-01T00:00:00Z", 2: "2026-01-03T00:00:00Z", 3: "2026-01-02T00:00:00Z"}
    for seed, created in days.items():
        params = {**PARAMS, "seed": seed}
        save_artifact(artifact_folder(CHAPTER, params, "cpu"), {"seed": seed}, {},
                      {**manifest(CHAPTER, params, "cpu", 1.0), "created": created})
    broken = artifact_folder(CHAPTER, {**PARAMS, "seed": 2}, "cpu")
    DAMAGE["empty arrays"](broken)
    (artifacts / CHAPTER / "teach" / ".tmp-being-written").mkdir()

    with caplog.at_level(logging.WARNING, logger="ggcn.book.artifacts"):
        found = recorded(CHAPTER, "teach")
    assert [r.metrics["seed"] for r in found] == [3, 1]
    assert all(r.loaded and not r.other_code for r in found)
    assert str(broken) in caplog.text
    assert recorded(CHAPTER, "paper") == []


RECORDED = sorted((REPO / "artifacts").glob("*/teach/*/manifest.json"))


def test_the_repository_records_teach_artifacts_in_the_keyed_layout_only():
    assert RECORDED, "no recorded teach artifacts under artifacts/<chapter>/teach/<key>/"
    flat = sorted((REPO / "artifacts").glob("*/teach/*.*"))
    assert not flat, f"artifacts left in the old flat layout: {flat}"


@pytest.mark.parametrize("manifest_file", RECORDED, ids=[str(p.parent.relative_to(REPO)) for p in RECORDED])
def test_a_recorded_teach_artifact_is_whole_and_sits_in_the_folder_of_its_key(manifest_file):
    result = load_artifact(manifest_file.parent)
    params = result.manifest["parameters"]
    assert manifest_file.parent.name == run_key(params, params["device"])
    if "code" not in result.manifest:
        assert "package unknown" in result.other_code, "an artifact without code hashes counts as other code"


def test_every_chapter_has_a_recorded_teach_run_for_make_book_to_show():
    """``make book`` renders the teach profile from these; a chapter without one would train for minutes."""
    missing = [c.stem for c in available_chapters() if not recorded(c.stem, "teach", REPO / "artifacts")]
    assert not missing, f"no recorded teach artifact for {missing}: run `make chapter NB=<chapter> PROFILE=teach`"
