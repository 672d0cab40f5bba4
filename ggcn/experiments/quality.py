"""Runners for the image-quality chapter (paper Sec. 5.2–5.3, Figs. 4–5 and 8, Table II).

* **Stability across data sets** -- GCN and both readings of wGCN on a texture, faces and digits over
  several seeds (:func:`stability`, :func:`ggcn.experiments.rules.compare_rules` per set).
* **Image quality (Table II)** -- each model trained on a labelled set, sampled and scored
  (:func:`quality_table`), unconditionally and conditionally; **Fig. 8** -- the same for GGCN alone.

Conditional learning, two ways [reading]: the GGCN family learns one model g_α([z, e(y)]) and f_θ(x, y);
every other model learns **one model per class** on that class's images, the way FRAME-type models are
made class-conditional (the paper does not say how its conditional GCN rows were made).

Every model takes the recipe of its data family (:data:`DATA_FAMILY`); the plan
(:func:`ggcn.config.plan_for`) overrides only what it names. Scores: :mod:`ggcn.measure.scores`
(proxy FID/IS name their classifier; Inception numbers only on the real weights).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ggcn.config import Plan, Profile, plan_for
from ggcn.experiments.rules import Comparison, compare_rules
from ggcn.experiments.runs import LABELS, Results, check_grid, fit, shown, sweep
from ggcn.experiments.verdicts import (HIGHER_IS_BETTER, combine, describe, difference, judge, most, record,
                                       seed_summary)
from ggcn.measure import data
from ggcn.measure.datasets import HELD_OUT, Labelled, from_uint8, table_set, tiny_set, to_uint8
from ggcn.measure.proxy import fit_proxy, label_accuracy
from ggcn.measure.rulers import digit_ruler, ordering_check
from ggcn.measure.scores import DigitRulerScorer, ProxyScorer, Scorer, combine_scorers, inception_scorer
from ggcn.models.cooperative import GGCN_NAMES
from ggcn.models.registry import MODELS

TABLE_MODELS = ("gcn", "wgcn", "wframe", "mgcn", "ggcn", "ggcn+ams", "dcgan")  # the paper's Table II rows we build
CANDIDATES = ("ggcn", "ggcn+ams")  # the claim: these score better than ...
BASELINES = ("gcn", "wgcn", "dcgan")  # ... these
STABILITY_MODELS = ("gcn", "wgcn", "wgcn-data")
SETTINGS = ("unconditional", "conditional")
# The recipe family (ggcn.config.FAMILIES) of each data set. Sets without a recipe of their own
# (CIFAR-10, Tiny ImageNet and its stand-in) take the one of natural photographs, "faces".
DATA_FAMILY = {"brick": "texture", "lfw": "faces", "digits": "digits", "cifar10": "faces",
               "tiny-imagenet": "faces", "stand-in": "faces"}

# The paper's Table II: CIFAR-10 Inception Score (mean, sd) *as reported by the paper*, for the rows
# we rebuild. None: the row is not in the paper's table as our copy of the text has it.
REPORTED_IS: dict[str, dict[str, tuple[float, float] | None]] = {
    "unconditional": {"gcn": (4.18, 0.13), "wgcn": (4.31, 0.12), "wframe": (5.52, 0.13), "mgcn": None,
                      "ggcn": None, "ggcn+ams": (6.79, 0.08), "dcgan": None},
    "conditional": {"gcn": (5.50, 0.05), "wgcn": (5.70, 0.06), "wframe": (6.05, 0.13), "mgcn": (6.57, 0.05),
                    "ggcn": (7.10, 0.07), "ggcn+ams": (7.01, 0.05), "dcgan": (6.58, 0.05)},
}
REPORTED_REAL_IS = (11.24, 0.11)  # the paper's IS of the real CIFAR-10 images


# ---------------------------------------------------------------------------
# Part 1: stability across data sets


STABILITY_SETS = {"texture (brick)": "brick", "faces (LFW)": "lfw", "digits": "digits"}


def family_of(name: str) -> str | None:
    """The recipe family of a data set, by its name (:data:`DATA_FAMILY`) or its title in
    :data:`STABILITY_SETS`; None for other sets, which then take the profile's values."""
    return DATA_FAMILY.get(STABILITY_SETS.get(name, name))


def stability_data(plan: Plan, n: int, seed: int = 0) -> dict[str, Tensor]:
    """The three offline sets of part 1 at ``plan.stability_size``: ``n`` texture crops, and ``n``
    faces and digits (all of them when a set has fewer)."""
    size = plan.stability_size
    return {title: data.load_images(name, size=size, seed=seed, n=n if name in data.TEXTURES
                                    else min(n, len(data.image_dataset(name, size=size))))
            for title, name in STABILITY_SETS.items()}


def stability(datasets: dict[str, Tensor], profile: Profile, plan: Plan, seeds: Sequence[int], *,
              device: str = "cpu") -> dict[str, Comparison]:
    """GCN and both wGCN readings on each data set of :data:`STABILITY_SETS` (keyed by its title), every
    seed, with the plan's budget and the set's recipe (response distance on the fixed Gabor/DoG bank,
    see :func:`ggcn.experiments.rules.compare_rules`)."""
    options = {k: v for k, v in (("step_size", plan.step_size), ("langevin_steps", plan.stability_steps))
               if v is not None}
    lrs = [plan.lr] if plan.lr is not None else None
    return {name: compare_rules(STABILITY_MODELS, x, profile, seeds, lrs=lrs, iterations=plan.stability_iterations,
                                family=family_of(name), device=device, **options)
            for name, x in datasets.items()}


# Parts 2–3: train, sample, score


def model_options(name: str, plan: Plan, family: str | None = None) -> dict[str, Any]:
    """Build options for ``name``: the recipe of ``family`` (when given), the plan's δ and γ where the plan
    sets them and the model has them, and its Langevin steps for the single-grid energy models (MGCN and
    GGCN keep their recipes' shorter chains)."""
    options = {"family": family}
    if name != "dcgan":
        options.update(langevin_steps=plan.table_steps if name in MODELS else None, step_size=plan.step_size,
                       lr=plan.lr)
    return {k: v for k, v in options.items() if v is not None}


def balanced_labels(n_classes: int, n: int) -> Tensor:
    """``n`` labels, ``n / n_classes`` of each class in order (n must be a multiple)."""
    if n % n_classes:
        raise ValueError(f"{n} samples do not split evenly over {n_classes} classes; use a multiple of {n_classes}")
    return torch.arange(n_classes).repeat_interleave(n // n_classes)


@dataclass
class Generated:
    """Samples of one run (with their labels, −1 when unconditional), divergence flag and time."""

    x: Tensor
    y: Tensor
    diverged: bool
    seconds: float


def generate(name: str, x: Tensor, profile: Profile, seed: int, *, n_samples: int, iterations: int,
             y: Tensor | None = None, class_iterations: int | None = None, device: str = "cpu",
             **overrides: Any) -> Generated:
    """Train ``name`` on ``x`` and draw ``n_samples``; conditional when the labels ``y`` are given.

    Conditional: the GGCN family learns one labelled model; every other model learns one model per
    class (classes 0..K−1, K = max label + 1), each for ``class_iterations`` (default ``iterations``),
    and contributes ``n_samples / K`` samples of its class.
    """
    def run(images: Tensor, n: int, **kwargs: Any) -> Any:  # n persistent chains where the model has them
        chains = {"n_particles": n} if name in MODELS else {}
        return fit(name, images, profile, seed, device=device, **chains, **kwargs, **overrides)

    if y is None:
        one = run(x, n_samples, iterations=iterations)
        return Generated(shown(one.model, n_samples), torch.full((n_samples,), -1), one.diverged, one.wall)
    labels = balanced_labels(int(y.max()) + 1, n_samples)
    if name in GGCN_NAMES:
        one = run(x, n_samples, iterations=iterations, labels=y)
        return Generated(shown(one.model, n_samples, labels.to(device)), labels, one.diverged, one.wall)
    parts, diverged, seconds = [], False, 0.0
    for c in range(int(y.max()) + 1):
        if not (y == c).any():
            raise ValueError(f"class {c} has no training images; conditional runs need every class 0..{int(y.max())}")
        n_c = int((labels == c).sum())
        one = run(x[y == c], n_c, iterations=class_iterations or iterations)
        parts.append(shown(one.model, n_c))
        diverged, seconds = diverged or one.diverged, seconds + one.wall
    return Generated(torch.cat(parts), labels, diverged, seconds)

# -- the table ---------------------------------------------------------------------------


@dataclass
class Table(Results):
    """Scores of models × seeds, and a few samples of each model's first seed.

    ``scores[metric]``: (models, seeds); ``samples``: uint8 (models, n_keep, C, H, W);
    ``sample_labels``: (models, n_keep), −1 when unconditional; ``diverged``: (models, seeds);
    ``seconds``: training time (models, seeds).
    """

    models: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: dict[str, np.ndarray]
    samples: np.ndarray
    sample_labels: np.ndarray
    diverged: np.ndarray
    seconds: np.ndarray

    def values(self, metric: str) -> dict[str, list[float]]:
        """``{model: per-seed values}`` of one metric."""
        if metric not in self.scores:
            raise KeyError(f"no metric {metric!r}; this table has {sorted(self.scores)}")
        return {m: [float(v) for v in self.scores[metric][i]] for i, m in enumerate(self.models)}

    def samples_of(self, model: str) -> tuple[Tensor, Tensor]:
        """The kept samples of ``model`` in [−1, 1], with their labels."""
        i = self.models.index(model)
        return from_uint8(self.samples[i]), torch.as_tensor(self.sample_labels[i])


def _keep(x: Tensor, y: Tensor, n_keep: int) -> tuple[Tensor, Tensor]:
    """The first ``n_keep`` samples, spread evenly over the classes when labelled (ordered by class)."""
    if (y < 0).all():
        return x[:n_keep], y[:n_keep]
    classes = torch.unique(y)
    per = max(1, n_keep // len(classes))
    idx = torch.cat([torch.nonzero(y == c).flatten()[:per] for c in classes])
    return x[idx], y[idx]


def quality_table(models: Sequence[str], dataset: Labelled, profile: Profile, plan: Plan, seeds: Sequence[int],
                  scorer: Scorer, *, conditional: bool, device: str = "cpu",
                  options: Mapping[str, Any] | None = None) -> Table:
    """Train every model for every seed on ``dataset``, draw ``plan.n_samples`` and score them.

    Conditional runs use the labels (see :func:`generate`); every run has the plan's iterations of its model
    (:meth:`~ggcn.config.Plan.iterations_of`; each per-class model ``class_iterations``), the recipe of the
    set's family (:func:`family_of`) and ``options`` over it.
    """
    check_grid(models, LABELS, seeds)

    def one(name: str, seed: int) -> dict[str, Any]:
        run = generate(name, dataset.x, profile, seed, n_samples=plan.n_samples, iterations=plan.iterations_of(name),
                       y=dataset.y if conditional else None, class_iterations=plan.class_iterations, device=device,
                       **{**model_options(name, plan, family_of(dataset.name)), **(options or {})})
        if not torch.isfinite(run.x).all():
            raise FloatingPointError(f"{name} (seed {seed}) produced non-finite samples after restoring its "
                                     "last good state; lower its learning rate or Langevin step")
        x, y = _keep(run.x, run.y, plan.n_keep)
        return {**{f"score_{k}": v for k, v in scorer(run.x, run.y).items()}, "diverged": run.diverged,
                "seconds": run.seconds, "samples": to_uint8(x), "labels": y.numpy()}

    grid = sweep(one, {"name": models, "seed": seeds})
    scores = {k[len("score_"):]: v for k, v in grid.items() if k.startswith("score_")}
    return Table(tuple(models), tuple(seeds), scores, grid["samples"][:, 0], grid["labels"][:, 0], grid["diverged"],
                 grid["seconds"])


def real_scores(dataset: Labelled, plan: Plan, scorer: Scorer, *, conditional: bool, seed: int = 0) -> dict[str, float]:
    """The scores of real training images in place of samples (the floor of FID, the ceiling of IS):
    ``plan.n_samples`` of them, class-balanced and labelled when ``conditional``."""
    g = torch.Generator().manual_seed(seed)
    if not conditional:
        idx = torch.randperm(len(dataset.x), generator=g)[: plan.n_samples]
        return scorer(dataset.x[idx], torch.full((len(idx),), -1))
    labels = balanced_labels(int(dataset.y.max()) + 1, plan.n_samples)
    members = [torch.nonzero(dataset.y == c).flatten() for c in torch.unique(labels)]
    idx = torch.cat([m[torch.randint(len(m), (len(labels) // len(members),), generator=g)] for m in members])
    return scorer(dataset.x[idx], dataset.y[idx])


def table_verdict(tables: dict[str, Table], metric: str) -> tuple[str, dict[str, dict[str, str]]]:
    """Verdict on "every GGCN variant scores better than GCN, wGCN and DCGAN" in every setting.

    Each (setting, candidate, baseline) pair is judged by the declared test over seeds
    (:func:`ggcn.experiments.verdicts.judge`), gated on the baseline clearing the digit ruler's bar on
    most seeds (``ruler_learned``; without that ruler, as on CIFAR-10, there is no gate), and the pairs
    combined; returns the verdict and the pairwise verdicts.
    """
    pairs: dict[str, dict[str, str]] = {}
    for setting, table in tables.items():
        values = table.values(metric)
        bars = table.values("ruler_learned") if "ruler_learned" in table.scores else {}
        learned = {m: most([v > 0.5 for v in bars[m]]) if bars else True for m in table.models}
        pairs[setting] = {f"{cand} vs {base}": judge(values[cand], values[base], HIGHER_IS_BETTER[metric],
                                                     learned=learned[base])
                          for cand in CANDIDATES for base in BASELINES}
    return combine([v for by_pair in pairs.values() for v in by_pair.values()]), pairs


def pair_tests(tables: dict[str, Table], metric: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The declared test (:func:`ggcn.experiments.verdicts.difference`) of every pair of :func:`table_verdict`."""
    return {setting: {f"{c} vs {b}": difference(t.values(metric)[c], t.values(metric)[b]).to_dict()
                      for c in CANDIDATES for b in BASELINES} for setting, t in tables.items()}


def metric_label(metric: str, dataset: str) -> str:
    """The name a number is shown under: proxies name their classifier, Inception numbers their network."""
    names = {"proxy_fid": "proxy FID", "proxy_kid": "proxy KID", "proxy_is": "proxy IS",
             "label_accuracy": "label accuracy",
             "inception_fid": "FID (Inception-v3)", "inception_is": "IS (Inception-v3)",
             "inception_kid": "KID (Inception-v3)"}
    if metric not in names:
        raise KeyError(f"unknown metric {metric!r}; known: {sorted(names)}")
    by_proxy = metric.startswith("proxy_") or metric == "label_accuracy"
    return f"{names[metric]} ({dataset} classifier)" if by_proxy else names[metric]


def measured_text(tables: dict[str, Table], metric: str, label: str) -> str:
    """One line per setting: the claim's models as mean ± sd over seeds on ``metric``."""
    better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    parts = [f"{setting}: " + ", ".join(f"{LABELS[m]} {describe(t.values(metric)[m])}"
                                        for m in (*CANDIDATES, *BASELINES)) for setting, t in tables.items()]
    n = len(next(iter(tables.values())).seeds)
    return f"{label}, {better} is better, mean ± sd over {n} seeds; " + "; ".join(parts)


# ---------------------------------------------------------------------------
# The whole chapter: every run, as (metrics, arrays) for ggcn.book.artifacts.load_or_run

SETTING_PREFIX = {"unconditional": "uncond_", "conditional": "cond_"}


def _score_table(dataset: Labelled, profile: Profile, plan: Plan, seeds: Sequence[int], models: Sequence[str],
                 *, conditional_classes: int, device: str, data_root: str | Path | None,
                 weights_path: str | Path | None, seed: int, settings: Sequence[str] = SETTINGS,
                 options: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Table], dict[str, np.ndarray]]:
    """Proxy classifier (+ Inception when reading real data, + the digit ruler on offline digits), then
    for each of ``settings`` its table: unconditional on every class, conditional on the first
    ``conditional_classes``."""
    classifier = fit_proxy(dataset.x, dataset.y, iterations=plan.proxy_iterations, seed=seed)
    ruler = digit_ruler(seed, plan.table_size, steps=plan.ruler_steps) if dataset.name == "digits" else None
    conditional_set = dataset.first_classes(min(conditional_classes, len(dataset.classes)))
    info: dict[str, Any] = {
        "dataset": dataset.name, "classes": list(dataset.classes),
        "conditional_classes": list(conditional_set.classes),
        "proxy_accuracy": label_accuracy(classifier, dataset.real, dataset.real_y),
        "n_train": len(dataset.x), "n_real": len(dataset.real), "n_samples": plan.n_samples,
        "inception": {"available": False, "reason": "offline data: Inception features are not used on it"},
        "real": {}, "scores": {}, "seconds": {}, "diverged": {},
    }
    if ruler is not None:
        info["ruler"] = {"check": ruler.check().message, "references": {
            row: {k: scores[k] for k in ("recognised", "classes")} for row, scores in ruler.references().items()}}
        info["proxy"] = proxy_references(ProxyScorer(classifier, dataset.real, plan.is_splits), ruler.rows())
    tables, arrays = {}, {}
    for setting in settings:
        conditional = setting == "conditional"
        subset = conditional_set if conditional else dataset
        scorers: list[Scorer | None] = [ProxyScorer(classifier, subset.real, plan.is_splits),
                                        None if ruler is None else DigitRulerScorer(ruler)]
        if data_root is not None:
            incep, reason = inception_scorer(subset.real, f"{dataset.name}-{HELD_OUT.get(dataset.name, 'held-out')}",
                                             device=device, splits=plan.is_splits, weights_path=weights_path)
            info["inception"] = {"available": incep is not None, "reason": reason}
            scorers.append(incep)
        scorer = combine_scorers(*scorers)
        table = quality_table(models, subset, profile, plan, seeds, scorer, conditional=conditional, device=device,
                              options=options)
        tables[setting] = table
        info["real"][setting] = real_scores(subset, plan, scorer, conditional=conditional, seed=seed)
        info["scores"][setting] = {k: table.values(k) for k in table.scores}
        info["seconds"][setting] = dict(zip(table.models, table.seconds.astype(float).tolist()))
        info["diverged"][setting] = dict(zip(table.models, table.diverged.astype(bool).tolist()))
        prefix = SETTING_PREFIX[setting]
        arrays.update(table.to_arrays(prefix))
        real_x, real_y = _keep(subset.x, subset.y if conditional else torch.full((len(subset.x),), -1), plan.n_keep)
        arrays[prefix + "real"], arrays[prefix + "real_labels"] = to_uint8(real_x), real_y.numpy()
    return info, tables, arrays


PROXY_SCORES = ("proxy_fid", "proxy_kid", "proxy_is")


def proxy_references(scorer: ProxyScorer, rows: dict[str, Tensor]) -> dict[str, Any]:
    """The proxy scores of reference rows (a ruler's :meth:`~ggcn.measure.rulers.Ruler.rows`) and the
    check that each ranks real above blurred above noise, flat grey and the mean image."""
    references = {row: {k: v for k, v in scorer(x, torch.full((len(x),), -1)).items() if k in PROXY_SCORES}
                  for row, x in rows.items()}
    checks = {k: ordering_check(f"proxy {k[len('proxy_'):].upper()}", references, k, HIGHER_IS_BETTER[k])
              for k in PROXY_SCORES}
    return {"references": references, "check": {k: c.message for k, c in checks.items()},
            "passed": {k: c.passed for k, c in checks.items()}}


CLAIM_OF = {"unconditional": "quality-table", "conditional": "quality-table-conditional"}


def quality_chapter(profile: Profile, seed: int = 0, *, setting: str = "unconditional", device: str = "cpu",
                    data_root: str | Path | None = None, plan: Plan | None = None,
                    weights_path: str | Path | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every run of one quality chapter, as ``(metrics, arrays)`` for :func:`ggcn.book.artifacts.load_or_run`.

    ``setting="unconditional"`` (chapter 5):
    1. stability: GCN and both wGCNs on texture, faces and digits, ``profile.n_seeds`` seeds;
    2. Table II without labels: every model of :data:`TABLE_MODELS` on CIFAR-10 (``data_root``) or
       digits, ``plan.table_seeds`` seeds, with the verdict on ``quality-table`` in ``metrics["claims"]``.

    ``setting="conditional"`` (chapter 6):
    1. Table II with labels, as above, with the verdict on ``quality-table-conditional``;
    2. Fig. 8: GGCN unconditional and conditional (every class) on Tiny ImageNet (``data_root``) or
       the offline stand-in, ``plan.tiny_seeds`` seeds.
    """
    if setting not in CLAIM_OF:
        raise ValueError(f"setting must be one of {sorted(CLAIM_OF)}, got {setting!r}")
    plan = plan or plan_for(profile)
    seeds = [seed + k for k in range(profile.n_seeds)]
    table_seeds = [seed + k for k in range(plan.table_seeds)]
    metrics: dict[str, Any] = {"plan": plan.to_dict(), "setting": setting, "seeds": seeds, "table_seeds": table_seeds}
    arrays: dict[str, np.ndarray] = {}

    if setting == "unconditional":
        sets = stability_data(plan, profile.n_images, seed)
        runs = stability(sets, profile, plan, seeds, device=device)
        metrics["stability"] = {"sets": list(sets), "summary": {
            name: {m: seed_summary(c) for m, c in comparison.curves_at().items()} for name, comparison in runs.items()}}
        for i, (name, comparison) in enumerate(runs.items()):
            arrays.update(comparison.to_arrays(prefix=f"stab{i}_"))
            arrays[f"stab{i}_data"] = to_uint8(sets[name][: plan.n_keep])

    dataset = table_set(plan, data_root, seed)
    info, tables, table_arrays = _score_table(dataset, profile, plan, table_seeds, TABLE_MODELS,
                                              conditional_classes=plan.conditional_classes, device=device,
                                              data_root=data_root, weights_path=weights_path, seed=seed,
                                              settings=(setting,))
    metrics["table"] = info
    arrays.update(table_arrays)
    metric = "inception_is" if info["inception"]["available"] else "proxy_fid"
    label = metric_label(metric, dataset.name)
    verdict, pairs = table_verdict(tables, metric)
    tests = pair_tests(tables, metric)
    pair, test = min(tests[setting].items(),
                     key=lambda kv: abs(kv[1]["delta"]) if np.isfinite(kv[1]["delta"]) else np.inf)
    record(metrics, CLAIM_OF[setting], verdict, f"{measured_text(tables, metric, label)}; closest pair: {pair} "
           f"{test['text']}", metric=label, pairs=pairs, tests=tests, dataset=dataset.name, seeds=table_seeds)

    if setting == "conditional":
        tiny, note = tiny_set(plan, data_root, seed)
        tiny_plan = replace(plan, model_iterations=(("ggcn", plan.tiny_iterations or plan.iterations_of("ggcn")),))
        info, _, tiny_arrays = _score_table(tiny, profile, tiny_plan, table_seeds[: plan.tiny_seeds], ("ggcn",),
                                            conditional_classes=len(tiny.classes), device=device,
                                            data_root=data_root if tiny.name == "tiny-imagenet" else None,
                                            weights_path=weights_path, seed=seed, options=dict(plan.tiny_options))
        metrics["tiny"] = {**info, "note": note}
        arrays.update({f"tiny_{k}": v for k, v in tiny_arrays.items()})
    return metrics, arrays


@dataclass
class ChapterRuns:
    """A quality chapter's runs read back from an artifact's arrays (see :func:`quality_chapter`); the parts
    the chapter did not run are empty."""

    stability: dict[str, Comparison]
    stability_data: dict[str, Tensor]
    tables: dict[str, Table]
    tiny: dict[str, Table]
    real: dict[str, tuple[Tensor, Tensor]]  # "<setting>" / "tiny_<setting>" -> (images, labels)

    @classmethod
    def from_artifact(cls, metrics: dict[str, Any], arrays: dict[str, np.ndarray]) -> "ChapterRuns":
        sets = metrics.get("stability", {}).get("sets", [])
        parts = {where: p for s, prefix in SETTING_PREFIX.items()
                 for where, p in ((s, prefix), (f"tiny_{s}", f"tiny_{prefix}")) if p + "real" in arrays}
        return cls(
            stability={name: Comparison.from_arrays(arrays, f"stab{i}_") for i, name in enumerate(sets)},
            stability_data={name: from_uint8(arrays[f"stab{i}_data"]) for i, name in enumerate(sets)},
            tables={s: Table.from_arrays(arrays, p) for s, p in SETTING_PREFIX.items() if s in parts},
            tiny={s: Table.from_arrays(arrays, f"tiny_{p}") for s, p in SETTING_PREFIX.items() if f"tiny_{s}" in parts},
            real={where: (from_uint8(arrays[p + "real"]), torch.as_tensor(arrays[p + "real_labels"]))
                  for where, p in parts.items()},
        )
