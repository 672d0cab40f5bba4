"""Command line: rerun a chapter of the book at another profile, or list the profiles.

    python -m ggcn chapter 03_wgcn --profile paper --device cuda --seed 0 [--data-root ~/data] [--out runs/]
    python -m ggcn profiles

``chapter`` runs ``notebooks/<NB>.md`` with papermill into ``<out>/<NB>-<profile>.ipynb`` (a failed run is
kept as ``<NB>-<profile>.failed.ipynb`` and leaves the last good one in place). The book tools are imported
only inside the command, so the package works without them.
"""
import argparse
import ast
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ggcn.book.artifacts import NOTEBOOKS
from ggcn.config import PROFILES, Profile, get_profile, resolve_device
from ggcn.core.train import check_seed, ensure_writable

class UsageError(Exception):
    """Bad input from the command line: the message says what is wrong and what to do."""


class ChapterFailed(RuntimeError):
    """A cell of the chapter raised; the executed notebook keeps the traceback."""


def available_chapters(notebooks: Path = NOTEBOOKS) -> list[Path]:
    """The book's chapters: ``notebooks/NN_name.md``, in reading order."""
    return sorted(notebooks.glob("[0-9][0-9]_*.md"))


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
    """Names and default values assigned in the notebook's cell tagged ``parameters`` (:class:`UsageError`
    when there is none: papermill could not inject anything)."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            assigned = [n for n in ast.parse(cell.source).body if isinstance(n, ast.Assign) and len(n.targets) == 1]
            return {n.targets[0].id: ast.literal_eval(n.value) for n in assigned if isinstance(n.targets[0], ast.Name)}
    raise UsageError("this notebook has no code cell tagged `parameters`, so papermill cannot set its profile")


def failed_path(target: Path) -> Path:
    """Where a failed run of ``target`` is kept: ``<NB>-<profile>.failed.ipynb`` beside it."""
    return target.with_name(f"{target.stem}.failed.ipynb")


def _checked(profile: str, device: str | None, seed: int | None, data_root: str | None) -> str | None:
    """Refuse (:class:`UsageError`) an unknown profile, a device this machine lacks, a bad seed or a missing
    ``--data-root``; returns the data root as an absolute folder (chapters run in ``notebooks/``)."""
    try:
        get_profile(profile)
        for check, value in ((resolve_device, device), (check_seed, seed)):
            if value is not None:
                check(value)
    except ValueError as err:
        raise UsageError(str(err)) from err
    root = None if data_root is None else Path(data_root).expanduser().resolve()
    if root is not None and not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "does not exist"
        raise UsageError(f"--data-root {data_root}: {root} {problem}; pass the folder that holds the data sets "
                         "(layout in ggcn/measure/data.py) or leave --data-root out to use the offline sets")
    return None if root is None else str(root)


def _out_folder(out: str | Path) -> Path:
    """``--out``, created if needed; it must be a folder this process can write to."""
    folder = Path(out).expanduser()
    try:
        ensure_writable(folder)
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.is_file()), None)
        problem = f"{blocker} is a file, not a folder" if blocker else err.strerror or str(err)
        raise UsageError(f"--out {out}: cannot write the executed notebook there ({problem}); "
                         "pass --out a folder you can create and write to (default: runs/)") from err
    return folder


def run_chapter(chapter: str | Path, profile: str = "smoke", device: str | None = None, seed: int | None = None,
                data_root: str | None = None, out: str | Path = "runs", progress: bool = True) -> Path:
    """Execute one chapter with papermill at ``profile``; returns the executed ``.ipynb``.

    ``device``, ``seed`` and ``data_root`` are injected only when given and only if the chapter defines
    them (a note on stderr says when one is ignored). Every argument is checked (:class:`UsageError`)
    before any cell runs. The run goes to a partial file renamed into place only when every cell passed;
    a failed one raises :class:`ChapterFailed` and is kept at :func:`failed_path`.
    """
    path = find_chapter(str(chapter))
    root = _checked(profile, device, seed, data_root)
    try:
        import jupytext
        import papermill
    except ImportError as err:
        raise UsageError(f"the chapter command needs the book tools ({err.name} is missing): "
                         "install them with `pip install -e '.[book]'` or run `make venv`") from err
    folder, notebook = _out_folder(out), jupytext.read(path)
    defined = chapter_parameters(notebook)
    asked = {k: v for k, v in dict(profile=profile, device=device, seed=seed, data_root=root).items() if v is not None}
    for name in sorted(set(asked) - set(defined)):
        print(f"note: {path.stem} has no parameter {name!r}; ignoring it", file=sys.stderr)
    target = folder / f"{path.stem}-{profile}.ipynb"
    partial, failed = target.with_name(f".{target.stem}.{os.getpid()}.partial.ipynb"), failed_path(target)
    try:
        papermill.execute_notebook(notebook, str(partial), parameters={k: v for k, v in asked.items() if k in defined},
                                   cwd=str(path.parent), progress_bar=progress)
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
    return target


def profiles_table(profiles: dict[str, Profile] = PROFILES) -> str:
    """Every profile field as a row, one column per profile."""
    columns = [p.to_dict() for p in profiles.values()]
    rows = [["field", *profiles]] + [[key, *(str(c[key]) for c in columns)] for key in columns[0] if key != "name"]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ggcn``: run the command in ``argv``; exits 2 on bad input and 1 when a chapter fails."""
    parser = argparse.ArgumentParser(prog="python -m ggcn", description="Rerun the book's chapters; list the profiles.")
    commands = parser.add_subparsers(dest="command", required=True)
    chapter = commands.add_parser("chapter", help="execute one chapter with papermill at a profile")
    chapter.add_argument("notebook", help="chapter name (03_wgcn), file name (03_wgcn.md) or path")
    chapter.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} (default: smoke)")
    chapter.add_argument("--device",
                         help="auto, cpu, cuda, cuda:N or mps, one this machine has (default: the chapter's)")
    chapter.add_argument("--seed", type=int, help="random seed in [0, 2**32) (default: the chapter's)")
    chapter.add_argument("--data-root", help="folder of the real data sets (see ggcn/measure/data.py)")
    chapter.add_argument("--out", default="runs", help="folder for the executed notebook (default: runs/)")
    commands.add_parser("profiles", help="print the run profiles")
    args = parser.parse_args(argv)
    if args.command == "profiles":
        print(profiles_table())
        return 0
    start = time.perf_counter()
    try:
        target = run_chapter(args.notebook, args.profile, args.device, args.seed, args.data_root, args.out)
    except (UsageError, ChapterFailed) as err:  # bad input exits 2 (as argparse does), a failed cell 1
        usage = isinstance(err, UsageError)
        parser.exit(2 if usage else 1, f"{parser.prog}: {'error: ' if usage else ''}{err}\n")
    print(f"wrote {target} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
