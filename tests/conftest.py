"""nbval for jupytext chapters: lets ``pytest --nbval-lax`` collect ``notebooks/NN_name.md``.

nbval reads ``.ipynb`` only. :class:`JupytextNbFile` is nbval's own collector, with the
notebook read through jupytext instead of nbformat; everything else (one test item per code
cell, one kernel per notebook started in the notebook's folder, lax output checks) is nbval's.

A conftest's collection hooks only apply below its own folder, so to validate chapters load
this file as a plugin from the ``tests`` folder (``tests/test_notebooks.py`` does this)::

    cd tests && ../.venv/bin/python -m pytest -p conftest --nbval-lax --nbval-current-env ../notebooks/

(``make nbval`` runs exactly that.)
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest


def is_jupytext_notebook(path: Path) -> bool:
    """A ``.md`` file whose front matter declares a jupytext text representation."""
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "jupytext:" in head.split("\n---", 1)[0]


@cache
def _jupytext_nb_file() -> type:
    """nbval's ``IPyNbFile`` reading through jupytext (built on first use: nbval is a book tool)."""
    import jupytext
    import nbformat
    from nbval import plugin

    class _JupytextAsNbformat:
        """Stands in for ``nbformat`` inside nbval's ``collect``: only ``read`` differs."""

        def __getattr__(self, name: str):
            return getattr(nbformat, name)

        @staticmethod
        def read(path: str, as_version: int):
            return jupytext.read(path, as_version=as_version)

    class JupytextNbFile(plugin.IPyNbFile):
        def collect(self):
            plugin.nbformat = _JupytextAsNbformat()
            try:
                yield from super().collect()
            finally:
                plugin.nbformat = nbformat

    return JupytextNbFile


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    option = parent.config.option
    nbval_on = getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)
    if nbval_on and is_jupytext_notebook(file_path):
        return _jupytext_nb_file().from_parent(parent, path=file_path)
    return None


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Run the in-process tests on one torch thread.

    Their tensors are small, so one thread is about as fast as two; and on a shared machine a
    two-thread OpenMP region waits for a descheduled thread at every operation, which made the
    core tests 20–35× slower under load. Chapters run in their own kernels and are unaffected.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
