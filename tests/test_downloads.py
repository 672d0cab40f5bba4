"""Downloads for class (``book/_ext/class_downloads.py``): each chapter page links its executed
notebook and a student notebook that keeps the exercises, drops their solutions and has no outputs.

The conversion is tested here on small MyST texts and on every chapter; the links and files on the
built book are checked in ``test_book.py``, on its one build.
"""
from __future__ import annotations

import re
import sys

import jupytext
import nbformat
import pytest
from book_layout import REPO

from ggcn.__main__ import available_chapters

sys.path.insert(0, str(REPO / "book" / "_ext"))  # where _config.yml's local_extensions finds it
from class_downloads import PLACEHOLDER, strip_solutions, student_notebook, with_glued_outputs  # noqa: E402

EXERCISE = re.compile(r"^:{3,}\{admonition\} Exercise", flags=re.M)
SOLUTION = re.compile(r"^:{3,}\{admonition\} Solution", flags=re.M)

CHAPTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
:tags: [parameters]

profile = "smoke"
```

## Exercises

:::{admonition} Exercise 1 — add
What is $1 + 1$?
:::

:::{admonition} Solution
:class: dropdown
It is two.
:::

```{code-cell} ipython3
print(1 + 1)
```

:::{admonition} Exercise 2 — multiply
What is $6 \\times 7$?
:::

::::{admonition} Solution
:class: dropdown
:::{note}
A nested note.
:::
Forty-two, as
```python
print(6 * 7)
```
shows.
::::

Closing words.
"""


def markdown(notebook: nbformat.NotebookNode) -> str:
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def code_sources(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_the_student_notebook_keeps_the_exercises_and_puts_a_placeholder_for_each_solution():
    text = markdown(student_notebook(CHAPTER))
    assert "Exercise 1 — add" in text and "What is $6 \\times 7$?" in text
    assert len(EXERCISE.findall(text)) == 2
    assert not SOLUTION.search(text)
    for solution_text in ("It is two.", "A nested note.", "Forty-two", "shows."):
        assert solution_text not in text
    assert text.count(PLACEHOLDER) == 2
    assert "Closing words." in text


def test_the_student_notebook_keeps_every_code_cell_and_has_no_outputs():
    notebook = student_notebook(CHAPTER)
    assert code_sources(notebook) == ['profile = "smoke"', "print(1 + 1)"]
    assert notebook.cells[1].metadata["tags"] == ["parameters"]
    assert all(cell.outputs == [] and cell.execution_count is None
               for cell in notebook.cells if cell.cell_type == "code")
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(notebook)


def test_a_placeholder_is_its_own_paragraph_even_where_the_solution_touched_its_neighbours():
    text = ":::{admonition} Exercise 1\nWhy?\n:::\n:::{admonition} Solution\nBecause.\n:::\nNext."
    assert strip_solutions(text) == f":::{{admonition}} Exercise 1\nWhy?\n:::\n\n{PLACEHOLDER}\n\nNext."


def test_markdown_without_solutions_is_left_as_it_is():
    text = ":::{admonition} Exercise 1\nWhy?\n:::\n\n:::{note}\nA note.\n:::\n"
    assert strip_solutions(text) == text


@pytest.mark.parametrize("text", [":::{admonition} Solution\n:class: dropdown\nBecause.\n",
                                  "Why?\n\n::::{admonition} Solution\nBecause.\n:::"])
def test_an_unclosed_solution_is_an_error_that_says_how_to_close_it(text):
    with pytest.raises(ValueError, match=r"opened on line \d+ is never closed: end it with a line ':{3,}'"):
        strip_solutions(text)


@pytest.mark.parametrize("chapter", available_chapters(), ids=[p.stem for p in available_chapters()])
def test_each_chapter_gives_a_student_notebook_with_all_its_exercises_and_no_solution(chapter):
    source = chapter.read_text(encoding="utf-8")
    notebook = student_notebook(source)
    text = markdown(notebook)
    assert len(EXERCISE.findall(text)) == len(EXERCISE.findall(source))
    assert not SOLUTION.search(text)
    assert text.count(PLACEHOLDER) == len(SOLUTION.findall(source))
    assert code_sources(notebook) == code_sources(jupytext.reads(source, fmt="md:myst"))


def test_glued_outputs_go_back_under_the_cell_that_glued_them_by_name():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('glue("fig_a", fig, display=False)'),
                                               nbformat.v4.new_code_cell("x = 1")])
    glued = {"fig_a": {"output_type": "display_data", "metadata": {"scrapbook": {"name": "fig_a"}},
                       "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
             "made_by_an_f_string_7": {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "7"}}}
    restored = with_glued_outputs(notebook, glued)
    assert [len(c.outputs) for c in restored.cells] == [1, 0]
    assert restored.cells[0].outputs[0].data["image/png"] == "iVBORw0KGgo=" and not restored.cells[0].outputs[0].metadata
    nbformat.validate(restored)
