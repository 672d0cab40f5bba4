"""Command line: rerun a chapter of the book at another profile, or list the profiles.

    python -m ggcn chapter 03_wgcn --profile paper --device cuda --seed 0 [--data-root ~/data] [--out runs/]
    python -m ggcn profiles

``chapter`` executes ``notebooks/<NB>.md`` with papermill, injecting only the parameters that
the chapter's ``parameters`` cell defines, and writes ``<out>/<NB>-<profile>.ipynb``. Results of
``teach``/``paper`` runs are also recorded under ``artifacts/`` (see :mod:`ggcn.book`), so the
next book build shows them. The book tools (papermill, jupytext) are imported only here, inside
the command, so the package itself works without them.
"""
from __future__ import annotations

import argparse
import ast
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from .config import PROFILES, Profile, get_profile

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTER_GLOB = "[0-9][0-9]_*.md"


class UsageError(Exception):
    """Bad input from the command line: the message says what is wrong and what to do."""


class ChapterFailed(RuntimeError):
    """A cell of the chapter raised; the executed notebook keeps the traceback."""


def available_chapters(notebooks: Path = NOTEBOOKS) -> list[Path]:
    """The book's chapters: ``notebooks/NN_name.md``, in reading order."""
    return sorted(notebooks.glob(CHAPTER_GLOB))


def find_chapter(name: str, notebooks: Path = NOTEBOOKS) -> Path:
    """``03_wgcn``, ``03_wgcn.md`` or a path to a jupytext chapter → the chapter's file."""
    given = Path(name).expanduser()
    if given.suffix == ".md" and given.is_file():
        return given.resolve()
    candidate = notebooks / (given.stem + ".md")
    if given.parent == Path(".") and candidate.is_file():
        return candidate
    names = [p.stem for p in available_chapters(notebooks)]
    listing = ", ".join(names) if names else f"none found in {notebooks} (run from a source checkout of the book)"
    raise UsageError(f"unknown chapter {name!r}; available chapters: {listing}")


def chapter_parameters(notebook: Any) -> dict[str, Any]:
    """Names and default values assigned in the notebook's cell tagged ``parameters``.

    Raises :class:`UsageError` when there is no such cell: papermill could not inject anything.
    """
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            defaults = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    defaults[node.targets[0].id] = ast.literal_eval(node.value)
            return defaults
    raise UsageError("this notebook has no code cell tagged `parameters`, so papermill cannot set its profile")


def _book_tools() -> tuple[Any, Any]:
    try:
        import jupytext
        import papermill
    except ImportError as err:
        raise UsageError(
            f"the chapter command needs the book tools ({err.name} is missing): "
            "install them with `pip install -e '.[book]'` or run `make venv`"
        ) from err
    return jupytext, papermill


def run_chapter(
    chapter: str | Path,
    profile: str = "smoke",
    device: str | None = None,
    seed: int | None = None,
    data_root: str | None = None,
    out: str | Path = "runs",
    progress: bool = True,
) -> Path:
    """Execute one chapter with papermill at ``profile``; returns the executed ``.ipynb``.

    ``device``, ``seed`` and ``data_root`` are injected only when given and only if the
    chapter defines them (a note on stderr says when one is ignored).
    """
    from .config import resolve_device

    path = find_chapter(str(chapter))
    try:
        get_profile(profile)
        if device is not None:
            resolve_device(device)
    except ValueError as err:
        raise UsageError(str(err)) from err
    jupytext, papermill = _book_tools()
    notebook = jupytext.read(path)
    defined = chapter_parameters(notebook)
    asked = {"profile": profile, "device": device, "seed": seed, "data_root": data_root}
    parameters = {k: v for k, v in asked.items() if v is not None and k in defined}
    for name in sorted(k for k, v in asked.items() if v is not None and k not in defined):
        print(f"note: {path.stem} has no parameter {name!r}; ignoring it", file=sys.stderr)
    target = Path(out) / f"{path.stem}-{profile}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(notebook, str(target), parameters=parameters, cwd=str(path.parent),
                                   progress_bar=progress)
    except papermill.PapermillExecutionError as err:
        raise ChapterFailed(f"{path.stem} failed in cell {err.exec_count}: {err.ename}: {err.evalue}; "
                            f"the traceback is in {target}") from err
    return target


def profiles_table(profiles: dict[str, Profile] = PROFILES) -> str:
    """Every profile field as a row, one column per profile."""
    names = list(profiles)
    rows = [["field", *names]] + [
        [f.name, *(str(getattr(profiles[n], f.name)) for n in names)] for f in fields(Profile) if f.name != "name"
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ggcn", description="Rerun the book's chapters; list the profiles.")
    commands = parser.add_subparsers(dest="command", required=True)
    chapter = commands.add_parser("chapter", help="execute one chapter with papermill at a profile")
    chapter.add_argument("notebook", help="chapter name (03_wgcn), file name (03_wgcn.md) or path")
    chapter.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} (default: smoke)")
    chapter.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the chapter's)")
    chapter.add_argument("--seed", type=int, default=None, help="random seed (default: the chapter's)")
    chapter.add_argument("--data-root", default=None, help="folder holding the real data sets (see ggcn/data.py)")
    chapter.add_argument("--out", default="runs", help="folder for the executed notebook (default: runs/)")
    commands.add_parser("profiles", help="print the run profiles")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "profiles":
        print(profiles_table())
        return 0
    start = time.perf_counter()
    try:
        target = run_chapter(args.notebook, args.profile, args.device, args.seed, args.data_root, args.out)
    except UsageError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except ChapterFailed as err:
        parser.exit(1, f"{parser.prog}: {err}\n")
    print(f"wrote {target} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
