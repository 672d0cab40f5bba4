"""``python -m ggcn``: rerun a chapter with papermill, list the profiles, and say clearly what is wrong."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap

import nbformat
import pytest
import torch
from book_layout import REPO

from ggcn.__main__ import ChapterFailed, UsageError, available_chapters, failed_path, find_chapter, main, run_chapter
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


# Fails when seed is 13, and prints the data root it was given.
FAILING_CHAPTER = TINY_CHAPTER.replace('seed = 0\n', 'seed = 0\ndata_root = None\n').replace(
    "print(profile, seed)", "assert seed != 13, 'unlucky seed'\nprint(profile, seed, data_root)")


def error_of(capsys, argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err


@pytest.fixture
def tiny(tmp_path):
    """A chapter with profile, seed and data_root parameters that fails at seed 13."""
    chapter = tmp_path / "90_tiny.md"
    chapter.write_text(FAILING_CHAPTER)
    return chapter


def refused_before_running(capsys, tiny, *options: str) -> str:
    """The CLI's error for ``options``: exit code 2, and no notebook written anywhere."""
    out = tiny.parent / "runs"
    code, err = error_of(capsys, ["chapter", str(tiny), "--out", str(out), *options])
    assert code == 2, err
    assert not out.exists() or not any(out.iterdir())
    return err


def printed(notebook) -> str:
    """What the tiny chapter's last cell printed."""
    return nbformat.read(notebook, as_version=4).cells[-1].outputs[0]["text"].strip()


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


@pytest.mark.parametrize("device", ["cudax", "cuda:-1", "cpu:1", ""])
def test_malformed_device_is_refused_before_running(capsys, tiny, device):
    err = refused_before_running(capsys, tiny, "--device", device)
    assert f"unknown device {device!r}" in err and "'cuda:N'" in err


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has an Apple GPU")
def test_mps_on_a_machine_without_it_is_refused_before_running(capsys, tiny):
    err = refused_before_running(capsys, tiny, "--device", "mps")
    assert "device 'mps' asked for, but this machine has no Apple GPU" in err and "'cpu'" in err


def test_a_cuda_device_this_machine_lacks_is_refused_before_running(capsys, tiny):
    missing = f"cuda:{torch.cuda.device_count()}"
    err = refused_before_running(capsys, tiny, "--device", missing)
    assert f"device {missing!r} asked for, but" in err
    assert "no CUDA device is visible" in err or f"only {torch.cuda.device_count()} CUDA device" in err


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_outside_0_to_2_32_is_refused_before_running(capsys, tiny, seed):
    err = refused_before_running(capsys, tiny, "--seed", seed)
    assert f"seed must be an integer in [0, 2**32), got {seed}" in err


def test_a_missing_data_root_is_refused_before_running(capsys, tiny):
    missing = tiny.parent / "no_data"
    err = refused_before_running(capsys, tiny, "--data-root", str(missing))
    assert f"--data-root {missing}: {missing} does not exist" in err
    assert "pass the folder that holds the data sets" in err and "leave --data-root out" in err


def test_a_data_root_that_is_a_file_is_refused_before_running(capsys, tiny):
    err = refused_before_running(capsys, tiny, "--data-root", str(tiny))
    assert f"{tiny} is a file, not a folder" in err


def test_out_under_a_file_is_refused_with_the_file_named(capsys, tiny):
    out = tiny / "runs"
    code, err = error_of(capsys, ["chapter", str(tiny), "--out", str(out)])
    assert code == 2
    assert f"--out {out}: cannot write the executed notebook there ({tiny} is a file, not a folder)" in err
    assert "pass --out a folder you can create and write to" in err and "Traceback" not in err


def test_out_that_is_a_file_is_refused(capsys, tiny):
    code, err = error_of(capsys, ["chapter", str(tiny), "--out", str(tiny)])
    assert code == 2 and f"({tiny} is a file, not a folder)" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_out_is_refused(capsys, tiny):
    out = tiny.parent / "locked"
    out.mkdir(mode=0o500)
    code, err = error_of(capsys, ["chapter", str(tiny), "--out", str(out)])
    assert code == 2 and "cannot write the executed notebook there (Permission denied)" in err


def test_a_relative_data_root_reaches_the_chapter_as_an_absolute_folder(tiny, monkeypatch):
    monkeypatch.chdir(tiny.parent)
    (tiny.parent / "data").mkdir()
    out = run_chapter(tiny, seed=1, data_root="data", out="runs", progress=False)
    assert printed(tiny.parent / out) == f"smoke 1 {tiny.parent / 'data'}"  # the chapter runs in its own folder


def test_a_failed_run_keeps_the_last_good_notebook_and_the_failed_one_beside_it(tiny):
    runs = tiny.parent / "runs"
    good = run_chapter(tiny, seed=1, out=runs, progress=False)
    with pytest.raises(ChapterFailed) as err:
        run_chapter(tiny, seed=13, out=runs, progress=False)
    failed = failed_path(good)
    assert failed == runs / "90_tiny-smoke.failed.ipynb"
    assert re.match(r"90_tiny-smoke failed in cell \d+: AssertionError: unlucky seed", str(err.value))
    assert f"the traceback is in {failed}; the last good run {good} is unchanged" in str(err.value)
    assert printed(good) == "smoke 1 None"
    outputs = nbformat.read(failed, as_version=4).cells[-1].outputs
    assert any(o.get("ename") == "AssertionError" for o in outputs)
    assert sorted(p.name for p in runs.iterdir()) == [failed.name, good.name]  # no partial file left
    run_chapter(tiny, seed=2, out=runs, progress=False)
    assert printed(good) == "smoke 2 None" and not failed.exists()


def test_a_failed_run_exits_1_and_says_where_the_traceback_is(capsys, tiny):
    out = tiny.parent / "runs"
    code, err = error_of(capsys, ["chapter", str(tiny), "--seed", "13", "--out", str(out)])
    assert code == 1 and f"the traceback is in {out / '90_tiny-smoke.failed.ipynb'}" in err
    assert not (out / "90_tiny-smoke.ipynb").exists()


def make_chapter_command(*assignments: str) -> list[str]:
    """The arguments ``make -n chapter`` would run (a dry run: nothing executes)."""
    proc = subprocess.run(["make", "-n", "chapter", *assignments], cwd=REPO, capture_output=True, text=True,
                          check=True)
    line = next(line for line in proc.stdout.splitlines() if " -m ggcn chapter " in line)
    return shlex.split(line)[1:]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_chapter_passes_each_variable_as_one_argument():
    argv = make_chapter_command("NB=03_wgcn", "DATA_ROOT=/a b", "PROFILE=teach", "DEVICE=cpu", "SEED=7")
    assert argv == ["-m", "ggcn", "chapter", "03_wgcn", "--profile", "teach", "--device", "cpu", "--seed", "7",
                    "--data-root", "/a b"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_chapter_keeps_quotes_and_shell_characters_inside_their_argument():
    argv = make_chapter_command("NB=03_wgcn; echo oops", "DATA_ROOT=/it's here")
    assert argv[3] == "03_wgcn; echo oops" and argv[-2:] == ["--data-root", "/it's here"]
    assert "--data-root" not in make_chapter_command("NB=03_wgcn")


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
    out = run_chapter(chapter, profile="teach", device="cpu", seed=7, data_root=str(tmp_path), out=tmp_path / "runs",
                      progress=False)
    assert out == tmp_path / "runs" / "90_tiny-teach.ipynb"
    notes = capsys.readouterr().err
    assert "no parameter 'data_root'" in notes and "no parameter 'device'" in notes
    executed = nbformat.read(out, as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "data_root" not in injected.source and "device" not in injected.source
    printed = executed.cells[-1].outputs[0]["text"]
    assert printed.strip() == "teach 7"
