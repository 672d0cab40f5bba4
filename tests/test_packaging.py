"""The repository's packaging agrees with itself: dependencies, table of contents, chapter files."""
from __future__ import annotations

import ast
import subprocess

import jupytext
import pytest
import yaml
from book_layout import REPO, toc_pages
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ggcn.__main__ import available_chapters, chapter_parameters

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib

CHAPTERS = available_chapters()
CHAPTER_PARAMETERS = {"profile", "seed", "device"}


def requirements(lines: list[str]) -> dict[str, str]:
    """Requirement strings → {canonical name: version specifier}."""
    parsed = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): str(r.specifier) for r in parsed}


def test_conda_environment_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    from_pyproject = project["dependencies"] + extras["book"] + extras["test"]
    conda = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_sections = [entry["pip"] for entry in conda["dependencies"] if isinstance(entry, dict) and "pip" in entry]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    pip = pip_sections[0]
    assert "-e ." in pip, "environment.yml's pip section must install the package itself (-e .)"
    assert requirements([p for p in pip if p != "-e ."]) == requirements(from_pyproject)


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found: they live in notebooks/NN_name.md"


def test_toc_lists_every_chapter_and_only_files_that_exist():
    listed = toc_pages()
    missing_from_toc = [p.stem for p in CHAPTERS if f"notebooks/{p.stem}" not in listed]
    assert not missing_from_toc, f"chapters not in _toc.yml: {missing_from_toc}"
    missing_files = [f for f in listed if not (REPO / f"{f}.md").is_file()]
    assert not missing_files, f"_toc.yml lists files that do not exist (as .md): {missing_files}"


def test_no_notebook_outputs_are_committed():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: cannot ask git which files are tracked")
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not tracked, f"chapters are committed as jupytext .md only; tracked .ipynb: {tracked}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_is_a_jupytext_myst_notebook_with_a_parameters_cell(chapter):
    notebook = jupytext.read(chapter)
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged `parameters`"
    statements = ast.parse(first.source).body
    assert all(isinstance(s, ast.Assign) for s in statements), "the parameters cell holds only assignments"
    defaults = chapter_parameters(notebook)
    assert CHAPTER_PARAMETERS <= set(defaults), f"missing parameters: {CHAPTER_PARAMETERS - set(defaults)}"
    assert defaults["profile"] is None, "chapters take the build's profile ($GGCN_PROFILE, else smoke)"
    assert all(v is None or isinstance(v, (str, int, float, bool)) for v in defaults.values()), defaults


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_makes_its_runs_with_one_load_or_run_on_a_package_runner(chapter):
    cells = [ast.parse("\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))))
             for cell in jupytext.read(chapter).cells if cell.cell_type == "code"]
    defined = {node.name for tree in cells for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    calls = [node for tree in cells for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_or_run"]
    assert len(calls) == 1, f"{chapter.name} calls load_or_run {len(calls)} times; one call records all its runs"
    runner = calls[0].args[2]
    called = runner.body.func if isinstance(runner, ast.Lambda) and isinstance(runner.body, ast.Call) else runner
    name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", None)
    assert name and name not in defined, (f"{chapter.name} runs {ast.unparse(runner)}: pass a runner of the package "
                                          "(ggcn.experiments), not a function the chapter defines")
