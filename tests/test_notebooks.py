"""Papermill passes a chapter's parameters: one chapter, run the way ``make chapter`` runs it.

Every chapter is executed once per test session, by the book build (``test_book.py``), which
also checks each chapter's executed cells, errors and figures. This file adds the one thing the
build cannot show: that ``python -m ggcn chapter`` injects parameters (a seed other than the
default) and that the injected values reach the run and its recorded artifact. ``make nbval``
still runs nbval on every chapter, cell by cell, for whoever wants that view.

The run writes its artifacts to a temporary folder (``GGCN_ARTIFACTS``), not the repository.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import nbformat
import pytest
from book_layout import REPO

from ggcn.__main__ import find_chapter, run_chapter

pytestmark = pytest.mark.notebooks

CHAPTER = find_chapter("02_kl_vs_jko")  # one of the quicker chapters at smoke
SEED = 1  # not the chapters' default (0), so the output shows papermill's injection took effect


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


def test_papermill_injects_the_parameters_and_the_run_records_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GGCN_ARTIFACTS", str(tmp_path / "artifacts"))
    executed = nbformat.read(run_chapter(CHAPTER, profile="smoke", device="cpu", seed=SEED,
                                         out=tmp_path, progress=False), as_version=4)

    cells = code_cells(executed)
    tags = [cell.metadata.get("tags", []) for cell in cells]
    assert "parameters" in tags[0], "the first code cell must be tagged `parameters`"
    assert "injected-parameters" in tags[1], "papermill must inject its cell right after the parameters cell"
    assert 'profile = "smoke"' in cells[1].source and f"seed = {SEED}" in cells[1].source
    assert all(cell.execution_count is not None for cell in cells)
    assert not [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    manifests = list((tmp_path / "artifacts").rglob("manifest.json"))
    assert manifests, "the chapter recorded no run: send experiments through ggcn.book.artifacts.load_or_run"
    recorded = json.loads(manifests[0].read_text())
    assert recorded["seed"] == SEED and recorded["parameters"]["profile"] == "smoke"
    assert manifests[0].is_relative_to(tmp_path / "artifacts" / CHAPTER.stem / "smoke")
    assert REPO in CHAPTER.parents


TINY = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  name: python3
---

# A two-cell chapter

```{code-cell} ipython3
x = 2 + 2
```

```{code-cell} ipython3
assert x == 4
print(x)
```
"""


def test_nbval_checks_a_jupytext_chapter_cell_by_cell(tmp_path):
    """``make nbval`` works: ``tests/conftest.py`` lets nbval read jupytext files, one item per code cell."""
    chapter = tmp_path / "90_tiny.md"
    chapter.write_text(TINY)
    report = tmp_path / "nbval.xml"
    command = [sys.executable, "-m", "pytest", "-p", "conftest", "--nbval-lax", "--nbval-current-env",
               "-p", "no:cacheprovider", "--rootdir", str(tmp_path), f"--junitxml={report}", "-q", str(chapter)]
    proc = subprocess.run(command, cwd=REPO / "tests", env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)
    assert report.is_file(), f"nbval did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": 2, "failures": 0, "errors": 0, "skipped": 0}, proc.stdout[-3000:]
