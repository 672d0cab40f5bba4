"""How chapters 5 and 6 show Table II: the rulers' reference rows, the paper's numbers beside ours, and
the per-seed score plot, all read from a quality chapter's ``metrics["table"]``
(:func:`ggcn.experiments.quality.quality_chapter`)."""

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ggcn.book import viz
from ggcn.experiments import quality, verdicts
from ggcn.experiments.runs import LABELS

SHORT = {"proxy_fid": "proxy FID ↓", "proxy_kid": "proxy KID ↓", "proxy_is": "proxy IS ↑",
         "label_accuracy": "label accuracy ↑", "ruler_recognised": "recognised (ruler) ↑",
         "ruler_classes": "classes (ruler) ↑", "inception_fid": "FID (Inception) ↓", "inception_is": "IS (Inception) ↑"}


def class_rows(x: Tensor, y: Tensor, per_class: int = 8) -> tuple[Tensor, int]:
    """Samples and a grid's row length: one row of up to ``per_class`` samples per class when labelled
    (``y ≥ 0``), a square-ish grid otherwise."""
    if (y < 0).all():
        return x, int(np.ceil(np.sqrt(len(x))))
    keep = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in torch.unique(y)])
    return x[keep], int((y[keep] == y[keep][0]).sum())


def reference_rows(table_info: dict[str, Any]) -> tuple[pd.DataFrame, str, str]:
    """The digit ruler's and the proxies' scores of the reference rows, with both self-checks in words
    (on data other than the offline digits there are no reference rows, and the checks say why)."""
    ruler, proxy = table_info.get("ruler"), table_info.get("proxy")
    offline_only = f"the reference rows are built on offline digits only; this run's table used {table_info['dataset']}"
    rows = pd.DataFrame(ruler["references"] if ruler else {}).T
    if proxy:
        rows = rows.join(pd.DataFrame(proxy["references"]).T)
    rows = rows.rename(columns={k.removeprefix("ruler_"): v for k, v in SHORT.items() if k[:5] in ("ruler", "proxy")})
    return (rows, ruler["check"] if ruler else offline_only,
            "; ".join(proxy["check"].values()) if proxy else offline_only)


def comparison_table(table_info: dict[str, Any], setting: str) -> pd.DataFrame:
    """One setting of Table II: the paper's reported CIFAR-10 IS beside our per-seed scores (mean ± sd)."""
    inception = table_info["inception"]["available"]
    shown = {"proxy": True, "label": setting == "conditional", "ruler": "ruler" in table_info, "inception": inception}
    keys = [key for key in SHORT if shown[key.split("_")[0]]]  # SHORT's order: proxy, label, ruler, inception
    networks = f"proxy: {table_info['dataset']} classifier" + ("; digit ruler" if "ruler" in table_info else "")
    ours = f"measured here on {table_info['dataset']} ({'Inception-v3; ' if inception else ''}{networks})"
    paper, rows = "reported by the paper", {}
    for model in [*quality.TABLE_MODELS, "real data"]:
        reported = quality.REPORTED_REAL_IS if model == "real data" else quality.REPORTED_IS[setting][model]
        scores = {(ours, SHORT[key]): f"{table_info['real'][setting][key]:.3g}" if model == "real data"
                  else verdicts.describe(table_info["scores"][setting][key][model]) for key in keys}
        rows[LABELS.get(model, model)] = {(paper, "CIFAR-10 IS ↑"): f"{reported[0]:.2f} ± {reported[1]:.2f}"
                                          if reported else "—", **scores}
    return pd.DataFrame.from_dict(rows, orient="index")


def score_plot(ax, table: quality.Table, table_info: dict[str, Any], setting: str) -> None:
    """Per-seed FID-type scores (dots) and their means (bars) for each model on a log axis, with the
    score of real images of the same count as a dashed line."""
    key = "inception_fid" if table_info["inception"]["available"] else "proxy_fid"
    for i, (model, v) in enumerate(table.values(key).items()):  # in the order of table.models
        ax.scatter(np.full(len(v), i), v, color=viz.color(model), s=30, zorder=3)
        ax.hlines(np.mean(v), i - 0.3, i + 0.3, color=viz.color(model), lw=2.5)
    ax.axhline(table_info["real"][setting][key], color=viz.color("data"), ls="--", lw=1.2,
               label="real images (same count)")
    ax.set_xticks(range(len(table.models)), [LABELS[m] for m in table.models], rotation=30)
    ax.set(yscale="log", title=setting, ylabel=f"{quality.metric_label(key, table_info['dataset'])} (lower is better)")
    ax.legend(frameon=False, fontsize="small")


def pair_table(claim: dict[str, Any], setting: str) -> pd.DataFrame:
    """The claim's pairwise outcomes in ``setting``: GGCN variants (rows) against each baseline (columns)."""
    return pd.DataFrame({f"better than {LABELS[base]}": {
        LABELS[cand]: claim["pairs"][setting][f"{cand} vs {base}"] for cand in quality.CANDIDATES}
        for base in quality.BASELINES})


def scorer_note(table_info: dict[str, Any], data_root: object) -> str:
    """Which networks scored the run, in words: Inception-v3, or proxies only (and why)."""
    if table_info["inception"]["available"]:
        return "Inception-v3 scores were computed from the real weights, and the verdict uses the Inception Score."
    if data_root is not None:
        return ("The Inception-v3 weights were NOT available on this machine, so this run has no FID or IS at all: "
                "every score in it is a proxy on a small classifier. Reason: " + table_info["inception"]["reason"])
    return ("This run used offline data, so every score is a proxy on a small classifier trained on that data; "
            "none of them is an FID or an Inception Score.")


def plain_verdict(verdict: str, table_info: dict[str, Any], setting: str, profile: str) -> str:
    """The verdict on one half of Table II in plain words."""
    where = ("on CIFAR-10 with the Inception Score" if table_info["inception"]["available"]
             else f"on {table_info['dataset']} with our proxy score")
    labels = "with labels" if setting == "conditional" else "without labels"
    plain = {
        verdicts.REPRODUCED: f"both GGCN variants beat GCN, wGCN and DCGAN by the declared test {labels}: the paper's "
                             "ranking holds here.",
        verdicts.NOT_REPRODUCED: "at least one baseline beats a GGCN variant by the declared test (see the pairwise "
                                 "outcomes), so the paper's ranking does not hold here.",
        verdicts.INCONCLUSIVE: "the test finds no difference for some pairs and none goes against the paper: the "
                               "ranking is neither confirmed nor refuted here.",
        verdicts.NOT_LEARNED: "at least one baseline did not clear the digit ruler's \"learned\" bar on most seeds, "
                              "so the comparison says nothing about the paper's ranking.",
    }[verdict]
    smoke = " At the smoke profile no model has learnt anything yet, so this verdict only shows that the code runs."
    return f"At this profile, {where}, {plain}" + (smoke if profile == "smoke" else "")
