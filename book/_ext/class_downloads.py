"""Downloads for class: every chapter page links its executed notebook and a student notebook.

A chapter is a document under ``notebooks/``. Its HTML page gets a note after the title with two
links, and at the end of the build both files are written to ``_downloads/class/`` in the output:

* ``<name>.ipynb``: the notebook as myst-nb executed it during this build, outputs included (myst-nb
  moves glued outputs out of their cells; :func:`with_glued_outputs` puts those glued by a literal name back);
* ``<name>-student.ipynb``: the chapter source without its solutions and without outputs
  (:func:`student_notebook`), for working through the exercises.

Registered in ``_config.yml`` under ``sphinx: local_extensions``. :func:`student_notebook` needs
only jupytext, nbformat and markdown-it, so it can be used and tested without Sphinx.
"""
from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
from docutils import nodes
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.osutil import relative_uri

CHAPTERS = "notebooks/"
DOWNLOADS = "_downloads/class"
PLACEHOLDER = "*Your answer here.*"
SOLUTION = "{admonition} Solution"

_COLON_FENCES = MarkdownIt("commonmark").use(colon_fence_plugin)


def strip_solutions(markdown: str) -> str:
    """``markdown`` with each ``:::{admonition} Solution`` block replaced by :data:`PLACEHOLDER`."""
    lines = markdown.split("\n")
    solutions = [(*t.map, t.markup) for t in _COLON_FENCES.parse(markdown)
                 if t.type == "colon_fence" and t.info.strip().startswith(SOLUTION)]
    for start, end, fence in reversed(solutions):
        closing = lines[end - 1].strip()
        if end - 1 == start or not closing.startswith(fence) or closing.strip(":"):
            raise ValueError(f"the Solution block opened on line {start + 1} is never closed: "
                             f"end it with a line '{fence}'")
        before = [""] if start > 0 and lines[start - 1].strip() else []
        after = [""] if end < len(lines) and lines[end].strip() else []
        lines[start:end] = before + [PLACEHOLDER] + after
    return "\n".join(lines)


def student_notebook(source: str) -> nbformat.NotebookNode:
    """The student notebook of a jupytext MyST chapter: solutions stripped, no outputs."""
    notebook = jupytext.reads(source, fmt="md:myst")
    notebook.metadata.pop("jupytext", None)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source)
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def with_glued_outputs(notebook: nbformat.NotebookNode, glued: dict[str, dict]) -> nbformat.NotebookNode:
    """``notebook`` with each glued output back under the first code cell that names it literally."""
    for name, output in glued.items():
        cell = next((c for c in notebook.cells if c.cell_type == "code"
                     and (f'"{name}"' in c.source or f"'{name}'" in c.source)), None)
        if cell is not None:
            cell.outputs.append(nbformat.from_dict({"output_type": "display_data", "metadata": {},
                                                    "data": output["data"]}))
    return notebook


def _download_names(docname: str) -> tuple[str, str]:
    """Paths, under the HTML output, of a chapter's executed and student notebooks."""
    name = docname.removeprefix(CHAPTERS)
    return f"{DOWNLOADS}/{name}.ipynb", f"{DOWNLOADS}/{name}-student.ipynb"


def _is_chapter(app: Sphinx, docname: str) -> bool:
    """Whether ``docname`` is a chapter, in an HTML build (other builders get no downloads)."""
    return app.builder.format == "html" and docname.startswith(CHAPTERS)


def add_download_note(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Put the note with the two download links after the page title of a chapter."""
    if not _is_chapter(app, docname):
        return
    page = app.builder.get_target_uri(docname)
    executed, student = (relative_uri(page, target) for target in _download_names(docname))
    note = nodes.paragraph("", "Download for class: the ", classes=["class-downloads"])
    note += nodes.reference("", "executed notebook (.ipynb)", refuri=executed)
    note += nodes.Text(" or the ")
    note += nodes.reference("", "student notebook without solutions (.ipynb)", refuri=student)
    note += nodes.Text(".")
    section = doctree.next_node(nodes.section)
    if section is None or not isinstance(section[0], nodes.title):
        raise ExtensionError(f"{docname} has no title to put the class downloads under: "
                             "start the chapter with a '# Title' line")
    section.insert(1, note)


def write_downloads(app: Sphinx, exception: Exception | None) -> None:
    """Write every chapter's executed and student notebooks into the HTML output."""
    if exception is not None:
        return
    executed_folder = Path(app.env.mystnb_config.output_folder)
    for docname in sorted(d for d in app.env.found_docs if _is_chapter(app, d)):
        executed = executed_folder / f"{docname}.ipynb"
        if not executed.is_file():
            raise ExtensionError(f"myst-nb wrote no executed notebook for {docname} ({executed}): "
                                 "give the chapter a jupytext header or move it out of notebooks/")
        executed_out, student_out = (Path(app.outdir) / name for name in _download_names(docname))
        executed_out.parent.mkdir(parents=True, exist_ok=True)
        glue_file = executed.with_suffix(".glue.json")
        glued = json.loads(glue_file.read_text(encoding="utf-8")) if glue_file.is_file() else {}
        nbformat.write(with_glued_outputs(nbformat.read(executed, as_version=4), glued), executed_out)
        source = Path(app.env.doc2path(docname)).read_text(encoding="utf-8")
        nbformat.write(student_notebook(source), student_out)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("doctree-resolved", add_download_note)
    app.connect("build-finished", write_downloads)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
