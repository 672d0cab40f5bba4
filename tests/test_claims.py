"""The claims table is built from recorded artifacts only, and says loudly when one is missing."""
import json

import pytest

from ggcn.book import artifacts as book
from ggcn.book import claims
from ggcn.book.artifacts import artifact_folder, manifest, save_artifact
from ggcn.experiments import verdicts
from ggcn.experiments.verdicts import record

CREATED = "2026-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def code(tmp_path, monkeypatch):
    """The package and chapter sources that the artifacts' code hashes are taken from: a copy a test may edit."""
    package, notebooks = tmp_path / "package", tmp_path / "notebooks"
    package.mkdir()
    notebooks.mkdir()
    (package / "model.py").write_text("LR = 0.1\n")
    monkeypatch.setattr(book, "PACKAGE", package)
    monkeypatch.setattr(book, "NOTEBOOKS", notebooks)
    return package / "model.py"


def write_chapter(root, chapter, profile, verdicts, seed=0, created=CREATED):
    metrics = {}
    for claim_id, verdict in verdicts.items():
        record(metrics, claim_id, verdict, f"measured for {claim_id}", seeds=3)
    params = {"profile": profile, "seed": seed, "device": "cpu"}
    folder = artifact_folder(chapter, params, "cpu", root)
    save_artifact(folder, metrics, {}, {**manifest(chapter, params, "cpu", 1.0), "created": created})
    return folder


def write_all(root, profile="teach", skip=(), seed=0):
    by_chapter = {}
    for c in verdicts.CLAIMS:
        by_chapter.setdefault(c.chapter, {})[c.id] = verdicts.INCONCLUSIVE
    return {chapter: write_chapter(root, chapter, profile, verdicts, seed)
            for chapter, verdicts in by_chapter.items() if chapter not in skip}


def test_every_claim_gets_one_row_with_its_recorded_verdict(tmp_path):
    write_all(tmp_path)
    rows = claims.collect("teach", tmp_path)
    assert [r["claim"] for r in rows] == [c.statement for c in verdicts.CLAIMS]
    assert all(r["verdict"] == verdicts.INCONCLUSIVE for r in rows)
    assert all("teach" in r["run"] for r in rows)
    assert [r["test"] for r in rows] == [c.test for c in verdicts.CLAIMS]


def test_the_run_column_says_seed_device_commit_and_whether_the_current_code_made_it(tmp_path, code):
    write_all(tmp_path, seed=3)
    device, commit = book.device_name("cpu"), book.git_sha()[:12]
    rows = claims.collect("teach", tmp_path)
    assert all(f"seed 3 · {device} · git {commit} · current code" in r["run"] for r in rows), rows[0]["run"]

    code.write_text("LR = 0.2\n")
    rows = claims.collect("teach", tmp_path)
    assert all("· other code (package " in r["run"] for r in rows), rows[0]["run"]


def test_the_newest_artifact_of_a_chapter_gives_its_verdicts(tmp_path):
    write_all(tmp_path)
    newest = {"stability": verdicts.REPRODUCED, "faster-convergence": verdicts.REPRODUCED}
    write_chapter(tmp_path, "03_wgcn", "teach", newest, seed=5, created="2026-02-01T00:00:00Z")
    rows = {r["claim"]: r for r in claims.collect("teach", tmp_path)}
    row = rows[verdicts.BY_ID["stability"].statement]
    assert row["verdict"] == verdicts.REPRODUCED and "seed 5" in row["run"]


def test_a_missing_artifact_is_an_error_that_names_the_chapter_to_run(tmp_path):
    write_all(tmp_path, skip=("04_ggcn",))
    with pytest.raises(FileNotFoundError, match=r"04_ggcn.*make chapter NB=04_ggcn PROFILE=teach"):
        claims.collect("teach", tmp_path)


def test_a_broken_artifact_is_not_used_and_counts_as_missing(tmp_path):
    folders = write_all(tmp_path)
    (folders["04_ggcn"] / "arrays.npz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"04_ggcn.*make chapter NB=04_ggcn PROFILE=teach"):
        claims.collect("teach", tmp_path)


def test_an_artifact_without_the_verdict_is_an_error(tmp_path):
    folders = write_all(tmp_path)
    path = folders["03_wgcn"] / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["claims"]["stability"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(KeyError, match="stability"):
        claims.collect("teach", tmp_path)


def test_record_rejects_unknown_claims_and_verdicts():
    with pytest.raises(ValueError, match="unknown claim"):
        record({}, "faster-than-light", verdicts.REPRODUCED, "x")
    with pytest.raises(ValueError, match="verdict must be one of"):
        record({}, "stability", "sort of", "x")
