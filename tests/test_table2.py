"""Chapters 5 and 6 show Table II from a quality chapter's ``metrics["table"]``: the paper's numbers beside
ours, the rulers' reference rows with their checks, samples one row per class."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ggcn.book import table2  # noqa: E402
from ggcn.experiments import quality, verdicts  # noqa: E402

SCORES = {"proxy_fid": 2.0, "proxy_kid": 0.1, "proxy_is": 5.0, "label_accuracy": 0.9}


def table_info(setting, *, ruler=False):
    info = {"dataset": "digits", "inception": {"available": False},
            "real": {setting: {**SCORES, "ruler_recognised": 0.95, "ruler_classes": 10}},
            "scores": {setting: {k: {m: [v, v + 1.0, v + 2.0] for m in quality.TABLE_MODELS}
                                 for k, v in {**SCORES, "ruler_recognised": 0.5, "ruler_classes": 9}.items()}}}
    if ruler:
        info["ruler"] = {"check": "ruler: real > blurred > noise", "references": {
            "real": {"recognised": 0.95, "classes": 10}, "noise": {"recognised": 0.0, "classes": 0}}}
        info["proxy"] = {"check": {"proxy_fid": "proxy FID: ordered"}, "references": {
            "real": {"proxy_fid": 1.0, "proxy_kid": 0.0, "proxy_is": 9.0},
            "noise": {"proxy_fid": 90.0, "proxy_kid": 3.0, "proxy_is": 1.0}}}
    return info


@pytest.mark.parametrize("setting", quality.SETTINGS)
def test_the_comparison_table_puts_the_papers_is_beside_our_scores_for_every_row(setting):
    frame = table2.comparison_table(table_info(setting, ruler=True), setting)
    assert list(frame.index) == ["GCN", "wGCN", "wFRAME", "MGCN", "GGCN", "GGCN+AMS", "DCGAN", "real data"]
    paper = frame[("reported by the paper", "CIFAR-10 IS ↑")]
    assert paper["GCN"] == ("4.18 ± 0.13" if setting == "unconditional" else "5.50 ± 0.05")
    ours = [c for c in frame.columns if c[0].startswith("measured here on digits")]
    assert ("label accuracy ↑" in [c[1] for c in ours]) == (setting == "conditional")
    assert "recognised (ruler) ↑" in [c[1] for c in ours]
    assert frame.loc["real data", ours[0]] == "2"


def test_without_the_digit_ruler_the_reference_rows_say_why_they_are_missing():
    rows, ruler_check, proxy_check = table2.reference_rows({**table_info("unconditional"), "dataset": "cifar10"})
    assert rows.empty and "offline digits only" in ruler_check and "cifar10" in proxy_check
    rows, ruler_check, proxy_check = table2.reference_rows(table_info("unconditional", ruler=True))
    assert list(rows.index) == ["real", "noise"] and "proxy FID ↓" in rows.columns
    assert ruler_check.startswith("ruler") and proxy_check == "proxy FID: ordered"


def test_labelled_samples_are_laid_out_one_row_per_class():
    x, y = torch.rand(12, 1, 8, 8), torch.tensor([0] * 6 + [1] * 6)
    shown, nrow = table2.class_rows(x, y, per_class=4)
    assert len(shown) == 8 and nrow == 4
    shown, nrow = table2.class_rows(x, torch.full((12,), -1))
    assert len(shown) == 12 and nrow == 4


def test_the_pair_table_has_a_row_per_ggcn_variant_and_a_column_per_baseline():
    claim = {"pairs": {"conditional": {f"{c} vs {b}": "inconclusive" for c in quality.CANDIDATES
                                       for b in quality.BASELINES}}}
    frame = table2.pair_table(claim, "conditional")
    assert list(frame.index) == ["GGCN", "GGCN+AMS"]
    assert list(frame.columns) == ["better than GCN", "better than wGCN", "better than DCGAN"]


def test_the_score_plot_draws_a_dot_per_seed_and_the_real_images_line():
    info = table_info("unconditional")
    models = ("gcn", "ggcn")
    table = quality.Table(models, (0, 1, 2), {"proxy_fid": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])},
                          np.zeros((2, 4, 1, 8, 8), np.uint8), np.full((2, 4), -1), np.zeros((2, 3), bool),
                          np.zeros((2, 3)))
    fig, ax = plt.subplots()
    table2.score_plot(ax, table, info, "unconditional")
    assert len(ax.collections) >= 2 and ax.get_yscale() == "log"
    plt.close(fig)


def test_the_scorer_note_says_when_a_run_with_a_data_root_had_no_inception_weights():
    info = {**table_info("unconditional"), "inception": {"available": False, "reason": "no weights here"}}
    assert "no weights here" in table2.scorer_note(info, "/data") and "NOT available" in table2.scorer_note(info, "/d")
    assert "offline data" in table2.scorer_note(info, None)
    assert "real weights" in table2.scorer_note({**info, "inception": {"available": True}}, "/data")


@pytest.mark.parametrize("verdict", [verdicts.REPRODUCED, verdicts.NOT_REPRODUCED, verdicts.INCONCLUSIVE,
                                     verdicts.NOT_LEARNED])
def test_every_verdict_has_plain_words_and_smoke_says_nothing_was_learnt(verdict):
    text = table2.plain_verdict(verdict, table_info("conditional"), "conditional", "teach")
    assert text.startswith("At this profile, on digits with our proxy score")
    assert "smoke" in table2.plain_verdict(verdict, table_info("conditional"), "conditional", "smoke")
