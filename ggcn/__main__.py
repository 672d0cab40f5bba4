"""Command line: rerun a chapter of the book at another profile, or list the profiles.

    python -m ggcn chapter 03_wgcn --profile paper --device cuda --seed 0 [--data-root ~/data] [--out runs/]
    python -m ggcn profiles

``chapter`` executes ``notebooks/<NB>.md`` with papermill, injecting only the parameters that
the chapter's ``parameters`` cell defines, and writes ``<out>/<NB>-<profile>.ipynb``. Every argument
is checked before a cell runs. The notebook is executed into a hidden partial file beside it and
renamed into place only when every cell ran, so a failed run never replaces the last good one; it
is kept as ``<out>/<NB>-<profile>.failed.ipynb`` (with the traceback) instead. Results of
``teach``/``paper`` runs are also recorded under ``artifacts/`` (see :mod:`ggcn.book.artifacts`), so the
next book build shows them. The book tools (papermill, jupytext) are imported only here, inside
the command, so the package itself works without them.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from ggcn.config import PROFILES, Profile, get_profile

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


def check_arguments(profile: str, device: str | None, seed: int | None) -> None:
    """Refuse (:class:`UsageError`) an unknown profile, a device this machine cannot run, or a bad seed."""
    from ggcn.config import resolve_device
    from ggcn.core.train import check_seed

    try:
        get_profile(profile)
        if device is not None:
            resolve_device(device)
        if seed is not None:
            check_seed(seed)
    except ValueError as err:
        raise UsageError(str(err)) from err


def data_folder(data_root: str | Path) -> Path:
    """``--data-root`` as an absolute folder (chapters run in ``notebooks/``); it must exist."""
    folder = Path(data_root).expanduser().resolve()
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"--data-root {data_root}: {folder} {problem}; pass the folder that holds the data sets "
                         "(layout in ggcn/measure/data.py) or leave --data-root out to use the offline sets")
    return folder


def out_folder(out: str | Path) -> Path:
    """``--out``, created if needed; it must be a folder this process can write to."""
    from ggcn.core.train import ensure_writable

    folder = Path(out).expanduser()
    try:
        ensure_writable(folder)
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.is_file()), None)
        problem = f"{blocker} is a file, not a folder" if blocker else err.strerror or str(err)
        raise UsageError(f"--out {out}: cannot write the executed notebook there ({problem}); "
                         "pass --out a folder you can create and write to (default: runs/)") from err
    return folder


def failed_path(target: Path) -> Path:
    """Where a failed run of ``target`` is kept: ``<NB>-<profile>.failed.ipynb`` beside it."""
    return target.with_name(f"{target.stem}.failed.ipynb")


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
    chapter defines them (a note on stderr says when one is ignored). Every argument is checked
    (:class:`UsageError`) before any cell runs; a failed run raises :class:`ChapterFailed` and
    leaves the last good notebook in place.
    """
    path = find_chapter(str(chapter))
    check_arguments(profile, device, seed)
    root = None if data_root is None else str(data_folder(data_root))
    jupytext, papermill = _book_tools()
    folder = out_folder(out)
    notebook = jupytext.read(path)
    defined = chapter_parameters(notebook)
    asked = {"profile": profile, "device": device, "seed": seed, "data_root": root}
    parameters = {k: v for k, v in asked.items() if v is not None and k in defined}
    for name in sorted(k for k, v in asked.items() if v is not None and k not in defined):
        print(f"note: {path.stem} has no parameter {name!r}; ignoring it", file=sys.stderr)
    target = folder / f"{path.stem}-{profile}.ipynb"
    _execute(papermill, notebook, target, parameters, path.parent, progress)
    return target


def _execute(papermill: Any, notebook: Any, target: Path, parameters: dict[str, Any], cwd: Path,
             progress: bool) -> None:
    """Run ``notebook`` into a partial file beside ``target``; only a run whose every cell passed replaces it.

    A failed or interrupted run is kept as :func:`failed_path`; a passing run removes an old one.
    """
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial.ipynb")
    failed = failed_path(target)
    try:
        papermill.execute_notebook(notebook, str(partial), parameters=parameters, cwd=str(cwd),
                                   progress_bar=progress)
    except BaseException as err:
        if partial.exists():
            os.replace(partial, failed)
        if isinstance(err, papermill.PapermillExecutionError):
            kept = f"; the last good run {target} is unchanged" if target.exists() else ""
            raise ChapterFailed(f"{target.stem} failed in cell {err.exec_count}: {err.ename}: {err.evalue}; "
                                f"the traceback is in {failed}{kept}") from err
        raise
    os.replace(partial, target)
    failed.unlink(missing_ok=True)


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
    chapter.add_argument("--device", default=None,
                         help="auto, cpu, cuda, cuda:N or mps, one this machine has (default: the chapter's)")
    chapter.add_argument("--seed", type=int, default=None, help="random seed in [0, 2**32) (default: the chapter's)")
    chapter.add_argument("--data-root", default=None, help="folder holding the real data sets (see ggcn/measure/data.py)")
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
