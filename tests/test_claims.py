"""The claims table is built from recorded artifacts only, and says loudly when one is missing."""
import json

import pytest

from ggcn import claims
from ggcn.book import manifest, save_artifact


def write_chapter(root, chapter, profile, verdicts):
    metrics = {}
    for claim_id, verdict in verdicts.items():
        claims.record(metrics, claim_id, verdict, f"measured for {claim_id}", seeds=3)
    save_artifact(root / chapter / profile, metrics, {}, manifest({"profile": profile}, 0, "cpu", 1.0))


def write_all(root, profile="teach", skip=()):
    by_chapter = {}
    for c in claims.CLAIMS:
        by_chapter.setdefault(c.chapter, {})[c.id] = claims.INCONCLUSIVE
    for chapter, verdicts in by_chapter.items():
        if chapter not in skip:
            write_chapter(root, chapter, profile, verdicts)


def test_every_claim_gets_one_row_with_its_recorded_verdict(tmp_path):
    write_all(tmp_path)
    rows = claims.collect("teach", tmp_path)
    assert [r["claim"] for r in rows] == [c.statement for c in claims.CLAIMS]
    assert all(r["verdict"] == claims.INCONCLUSIVE for r in rows)
    assert all("teach" in r["run"] for r in rows)


def test_a_missing_artifact_is_an_error_that_names_the_chapter_to_run(tmp_path):
    write_all(tmp_path, skip=("04_ggcn",))
    with pytest.raises(FileNotFoundError, match=r"04_ggcn.*make chapter NB=04_ggcn PROFILE=teach"):
        claims.collect("teach", tmp_path)


def test_an_artifact_without_the_verdict_is_an_error(tmp_path):
    write_all(tmp_path)
    path = tmp_path / "03_wgcn" / "teach" / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["claims"]["stability"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(KeyError, match="stability"):
        claims.collect("teach", tmp_path)


def test_record_rejects_unknown_claims_and_verdicts():
    with pytest.raises(ValueError, match="unknown claim"):
        claims.record({}, "faster-than-light", claims.REPRODUCED, "x")
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.record({}, "stability", "sort of", "x")


@pytest.mark.parametrize(
    "ours, theirs, verdict",
    [
        ([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], claims.REPRODUCED),
        ([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], claims.NOT_REPRODUCED),
        ([1.0, 2.0, 0.5], [1.2, 0.4, 2.1], claims.INCONCLUSIVE),
        ([1.0], [2.0], claims.INCONCLUSIVE),
    ],
)
def test_compare_lower_needs_a_difference_beyond_the_seed_spread(ours, theirs, verdict):
    assert claims.compare_lower(ours, theirs) == verdict
