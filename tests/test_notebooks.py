"""Every chapter executes: under papermill at ``profile="smoke"``, and cell by cell under nbval.

Chapters are found by globbing ``notebooks/NN_name.md``. Each one is executed twice here
(the book build in ``test_book.py`` is the third run):

* through ``python -m ggcn chapter``'s own function, so papermill injects the parameters the
  way ``make chapter`` does, with a seed other than the default to show the injection works;
* by nbval in lax mode in a separate pytest process that loads ``tests/conftest.py`` as a
  plugin (it teaches nbval to read jupytext files): one test item per code cell.

Both runs write their artifacts to a temporary folder (``GGCN_ARTIFACTS``), not the repository.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import jupytext
import nbformat
import pytest
from book_layout import REPO

from ggcn.__main__ import available_chapters, run_chapter

pytestmark = pytest.mark.notebooks

CHAPTERS = available_chapters()
SEED = 1  # not the chapters' default (0), so the output shows papermill's injection took effect


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_under_papermill_at_smoke(chapter, tmp_path, monkeypatch):
    monkeypatch.setenv("GGCN_ARTIFACTS", str(tmp_path / "artifacts"))
    executed = nbformat.read(run_chapter(chapter, profile="smoke", device="cpu", seed=SEED,
                                         out=tmp_path, progress=False), as_version=4)

    cells = code_cells(executed)
    tags = [cell.metadata.get("tags", []) for cell in cells]
    assert "parameters" in tags[0], "the first code cell must be tagged `parameters`"
    assert "injected-parameters" in tags[1], "papermill must inject its cell right after the parameters cell"
    assert 'profile = "smoke"' in cells[1].source and f"seed = {SEED}" in cells[1].source
    not_run = [i for i, cell in enumerate(cells) if cell.execution_count is None]
    assert not not_run, f"code cells that did not run: {not_run}"
    assert any(cell.outputs for cell in cells), "no code cell produced any output"
    errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    manifests = list((tmp_path / "artifacts").rglob("manifest.json"))
    assert manifests, "the chapter recorded no run: send experiments through ggcn.book.load_or_run"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_passes_nbval_lax(chapter, tmp_path):
    report = tmp_path / "nbval.xml"
    command = [sys.executable, "-m", "pytest", "-p", "conftest", "--nbval-lax", "--nbval-current-env",
               "-p", "no:cacheprovider", "--rootdir", str(REPO), f"--junitxml={report}", "-q", str(chapter)]
    env = {**os.environ, "GGCN_ARTIFACTS": str(tmp_path / "artifacts")}
    proc = subprocess.run(command, cwd=REPO / "tests", env=env, capture_output=True, text=True, timeout=1800)

    assert report.is_file(), f"nbval did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, proc.stdout[-6000:]
    n_cells = len([c for c in jupytext.read(chapter).cells if c.cell_type == "code"])
    assert counts["tests"] == n_cells >= 1, f"nbval ran {counts['tests']} of {n_cells} code cells"
    assert proc.returncode == 0, proc.stdout[-3000:]
