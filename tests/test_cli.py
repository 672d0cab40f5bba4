"""``python -m ggcn``: rerun a chapter with papermill, list the profiles, and say clearly what is wrong."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import nbformat
import pytest
from book_layout import REPO

from ggcn.__main__ import UsageError, available_chapters, find_chapter, main, run_chapter
from ggcn.config import PROFILES

TINY_CHAPTER = textwrap.dedent('''\
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

    # A chapter with two parameters

    ```{code-cell} ipython3
    :tags: [parameters]
    profile = "smoke"
    seed = 0
    ```

    ```{code-cell} ipython3
    print(profile, seed)
    ```
    ''')


def error_of(capsys, argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err


def test_unknown_chapter_names_the_available_ones(capsys):
    code, err = error_of(capsys, ["chapter", "no_such_chapter"])
    assert code == 2
    assert "unknown chapter 'no_such_chapter'" in err
    assert all(p.stem in err for p in available_chapters())


def test_unknown_chapter_in_an_empty_folder_says_none_were_found(tmp_path):
    with pytest.raises(UsageError, match="none found"):
        find_chapter("03_wgcn", notebooks=tmp_path)


def test_chapter_is_found_by_name_file_name_or_path(tmp_path):
    chapter = tmp_path / "03_demo.md"
    chapter.write_text(TINY_CHAPTER)
    assert find_chapter("03_demo", notebooks=tmp_path) == chapter
    assert find_chapter("03_demo.md", notebooks=tmp_path) == chapter
    assert find_chapter(str(chapter), notebooks=REPO / "notebooks") == chapter.resolve()


def test_unknown_profile_is_refused_with_the_known_ones(capsys, tmp_path):
    chapter = tmp_path / "90_tiny.md"
    chapter.write_text(TINY_CHAPTER)
    code, err = error_of(capsys, ["chapter", str(chapter), "--profile", "huge"])
    assert code == 2
    assert "unknown profile 'huge'" in err and all(name in err for name in PROFILES)


def test_bad_device_is_refused(capsys, tmp_path):
    chapter = tmp_path / "90_tiny.md"
    chapter.write_text(TINY_CHAPTER)
    code, err = error_of(capsys, ["chapter", str(chapter), "--device", "tpu"])
    assert code == 2 and "unknown device 'tpu'" in err


def test_profiles_command_prints_every_profile_and_field():
    out = subprocess.run([sys.executable, "-m", "ggcn", "profiles"], capture_output=True, text=True,
                         check=True).stdout
    header = out.splitlines()[0].split()
    assert header == ["field", "smoke", "teach", "paper"]
    assert all(f"\n{field}" in out for field in PROFILES["paper"].to_dict() if field != "name")


def test_package_and_profiles_work_without_the_book_tools(tmp_path):
    chapter = tmp_path / "90_tiny.md"
    chapter.write_text(TINY_CHAPTER)
    blocked = "import sys; sys.modules.update(papermill=None, jupytext=None); "
    code = blocked + f"from ggcn.__main__ import main; main(['profiles']); main(['chapter', '{chapter}'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "smoke" in proc.stdout
    assert proc.returncode == 2 and "pip install -e '.[book]'" in proc.stderr, proc.stderr


def test_chapter_runs_with_only_the_parameters_it_defines(tmp_path, capsys):
    chapter = tmp_path / "90_tiny.md"
    chapter.write_text(TINY_CHAPTER)
    out = run_chapter(chapter, profile="teach", device="cpu", seed=7, data_root="/data", out=tmp_path / "runs",
                      progress=False)
    assert out == tmp_path / "runs" / "90_tiny-teach.ipynb"
    notes = capsys.readouterr().err
    assert "no parameter 'data_root'" in notes and "no parameter 'device'" in notes
    executed = nbformat.read(out, as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "data_root" not in injected.source and "device" not in injected.source
    printed = executed.cells[-1].outputs[0]["text"]
    assert printed.strip() == "teach 7"
