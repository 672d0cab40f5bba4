"""The GGCN ablation (the paper's Fig. 6), amortized vs Langevin sampling (Fig. 9) and latent
interpolation (Fig. 12).

Every model is trained by :func:`ggcn.experiments.runs.fit` for the same *time*: its own number of
iterations from :func:`equal_time`, by what an iteration costs (:data:`COST`); pass ``family="faces"``
for the recipes. Samples are scored by
:class:`ggcn.measure.scores.FaceScorer` (face-ruler KID, response distance, flat-patch excess, sharpness).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ggcn.config import Profile
from ggcn.experiments.runs import LABELS, Results, check_grid, fit, sweep
from ggcn.experiments.verdicts import combine, describe, difference, judge, most, record
from ggcn.measure.datasets import from_uint8, to_uint8
from ggcn.measure.metrics import fixed_responses, response_distance_callback
from ggcn.measure.rulers import FaceRuler
from ggcn.measure.scores import FaceScorer, sharpness_gap
from ggcn.models.cooperative import interpolate
from ggcn.models.registry import FAMILY

ABLATION = ("mgcn", "wmgcn", "ggcn-lhs+ams", "ggcn+ams", "ggcn")  # the paper's Fig. 6 (a)-(d) and full GGCN
SCORES = ("kid", "response_distance", "flat_excess", "sharpness")
GATE = "learned"  # a further score per model and seed: 1.0 if its KID clears the face ruler's bar
SECONDS = "seconds"  # and the CPU seconds its training took
# CPU time of one learning iteration relative to GGCN+AMS's, measured on the 16-px face recipes with
# batches of 32 on one thread (MGCN runs Langevin chains on two grids, GGCN revises its generator's draws).
COST = {"mgcn": 4.35, "wmgcn": 4.59, "ggcn-lhs+ams": 0.92, "ggcn+ams": 1.0, "ggcn": 2.79}
# The paper's Fig. 9 has two readings [reading]. Its caption: one trained GGCN sampled in one step (= AMS)
# and in 100 Langevin steps -- "ams" against "ams+langevin", the GGCN+AMS model followed by those steps; its
# text: GGCN+AMS against a GGCN trained with Langevin revision -- "ams" against "langevin".
SAMPLERS = ("ams", "langevin", "ams+langevin")
AMORTIZED, REVISED = "ggcn+ams", "ggcn"  # the models the sampler comparison reads
SLOW = "ams+langevin"  # the caption's slow sampler: the verdict's reading (the same trained model)


def equal_time(ams_iterations: int, models: Sequence[str] = ABLATION) -> dict[str, int]:
    """Iterations per model that take the time of ``ams_iterations`` of GGCN+AMS: n / COST[m], rounded."""
    return {m: max(1, round(ams_iterations / COST[m])) for m in models}


# -- sampling speed -----------------------------------------------------------------------


def time_sampler(sample: Callable[[], Tensor], min_seconds: float = 0.25, device: str = "cpu") -> tuple[Tensor, float]:
    """The samples of a first call, and the wall time of one call.

    A call slower than ``min_seconds`` is timed once; a faster one (its first call then counts
    as a warm-up) is repeated for ``min_seconds`` and its mean time returned. The repeats draw from a
    forked random state, so what runs next does not depend on how fast this machine is.
    """
    cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
    sync = torch.cuda.synchronize if cuda else lambda: None
    sync()
    start = time.perf_counter()
    x = sample()
    sync()
    first = time.perf_counter() - start
    if first >= min_seconds:
        return x, first
    calls, start = 0, time.perf_counter()
    with torch.random.fork_rng(devices=cuda):
        while time.perf_counter() - start < min_seconds:
            sample()
            sync()
            calls += 1
    return x, (time.perf_counter() - start) / calls


def compare_samplers(amortized: Any, revised: Any, n: int, steps: int, scorer: FaceScorer, *, min_seconds: float = 0.25,
                     device: str = "cpu") -> tuple[dict[str, dict[str, float]], dict[str, Tensor]]:
    """The samplers of :data:`SAMPLERS` on ``n`` samples each: scores plus ``samples_per_s``, and the samples.

    ``amortized`` is a trained GGCN+AMS, ``revised`` a trained GGCN (Langevin revision).
    """
    if not getattr(amortized, "ams", False) or getattr(revised, "ams", True):
        raise ValueError("compare_samplers needs a GGCN+AMS model first and a Langevin-revised GGCN second")
    draws = {"ams": lambda: amortized.sample(n), "langevin": lambda: revised.sample(n, n_steps=steps),
             "ams+langevin": lambda: amortized.sample(n, n_steps=steps)}
    scores, samples = {}, {}
    for name, draw in draws.items():
        x, seconds = time_sampler(draw, min_seconds, device)
        scores[name] = {**scorer(x), "samples_per_s": n / seconds}
        samples[name] = x
    return scores, samples


# -- interpolation ------------------------------------------------------------------------


def interpolation_rows(model: Any, rows: int, midpoints: int = 8, seed: int = 0) -> Tensor:
    """``(rows, midpoints + 2, C, H, W)``: :func:`ggcn.models.cooperative.interpolate` between pairs of fresh codes."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2 * rows, model.z_dim, generator=g).to(next(model.generator.parameters()).device)
    return torch.stack([interpolate(model, z[2 * i], z[2 * i + 1], midpoints=midpoints) for i in range(rows)])


# -- the whole chapter's experiment -------------------------------------------------------


@dataclass
class Ablation(Results):
    """What :func:`run_ablation` leaves: per-seed scores, curves, and the first seed's images.

    ``iterations``: (models,) learning iterations of each; ``scores[key]``: (models, seeds) for
    :data:`SCORES`, :data:`GATE` and :data:`SECONDS`; ``curves``: (models, seeds, most iterations) response
    distance of the particles to the batch during learning, NaN past a model's iterations; ``samples``: uint8
    (models, n_keep, C, H, W); ``sampler_scores[key]``: (samplers, seeds) for :data:`SCORES` and
    ``samples_per_s``; ``sampler_samples``: uint8 (samplers, n_keep, C, H, W); ``interpolation``:
    uint8 (rows, midpoints + 2, C, H, W) of the first seed's GGCN+AMS.
    """

    models: tuple[str, ...]
    seeds: tuple[int, ...]
    iterations: np.ndarray
    steps: int
    scores: dict[str, np.ndarray]
    curves: np.ndarray
    samples: np.ndarray
    sampler_scores: dict[str, np.ndarray]
    sampler_samples: np.ndarray
    interpolation: np.ndarray

    def score(self, model: str, key: str) -> np.ndarray:
        """Per-seed values of one score of one model."""
        return self.scores[key][self.models.index(model)]

    def sampler_score(self, sampler: str, key: str) -> np.ndarray:
        return self.sampler_scores[key][SAMPLERS.index(sampler)]

    def samples_of(self, model: str) -> Tensor:
        return from_uint8(self.samples[self.models.index(model)])

    def sampler_samples_of(self, sampler: str) -> Tensor:
        return from_uint8(self.sampler_samples[SAMPLERS.index(sampler)])

    def curves_of(self) -> dict[str, np.ndarray]:
        """``{model: (seeds, most iterations)}`` for ``viz.curves``."""
        return {m: self.curves[i] for i, m in enumerate(self.models)}

    def iterations_of(self, model: str) -> int:
        return int(self.iterations[self.models.index(model)])

    def speedup(self, slow: str = SLOW) -> np.ndarray:
        """Per seed: samples per second of one-pass AMS ÷ those of the sampler ``slow`` (of :data:`SAMPLERS`)."""
        return self.sampler_score("ams", "samples_per_s") / self.sampler_score(slow, "samples_per_s")


def run_ablation(data: Tensor, profile: Profile, seeds: Sequence[int], scorer: FaceScorer, *,
                 models: Sequence[str] = ABLATION, iterations: int | Mapping[str, int] | None = None,
                 n_samples: int = 100, n_keep: int = 16, steps: int = 100, rows: int = 4, midpoints: int = 8,
                 device: str = "cpu", **overrides: Any) -> Ablation:
    """Train every model of ``models`` for every seed (``iterations``: one count for all or one per model,
    e.g. :func:`equal_time`; the profile's by default) and score ``n_samples``
    samples of each; per seed also compare the samplers (``steps`` Langevin steps) of the trained
    GGCN+AMS and GGCN, and interpolate ``rows`` pairs of codes with the first seed's GGCN+AMS.
    ``overrides`` go to :func:`ggcn.experiments.runs.fit` (e.g. ``family="faces"`` for the recipes)."""
    check_grid(models, FAMILY, seeds)
    missing = {AMORTIZED, REVISED} - set(models)
    if missing:
        raise ValueError(f"the sampler comparison and the interpolation need {sorted(missing)} among the models")
    iterations = profile.iterations if iterations is None else iterations
    budget = dict(iterations) if isinstance(iterations, Mapping) else {m: iterations for m in models}
    if set(models) - set(budget):
        raise ValueError(f"no iterations given for {sorted(set(models) - set(budget))}")
    longest = max(budget[m] for m in models)
    callback = response_distance_callback(fixed_responses(data.shape[1]))

    def one(seed: int) -> dict[str, Any]:
        runs = {name: fit(name, data, profile, seed, iterations=budget[name], callbacks=[callback], device=device,
                          **overrides) for name in models}
        samples = []
        for run in runs.values():
            torch.manual_seed(seed)
            samples.append(run.model.sample(n_samples))
        scores = [scorer(x) for x in samples]
        by_sampler, sampled = compare_samplers(runs[AMORTIZED].model, runs[REVISED].model, n_samples, steps, scorer,
                                               device=device)
        return {**{f"score_{k}": [s[k] for s in scores] for k in (*SCORES, GATE)},
                f"score_{SECONDS}": [run.seconds for run in runs.values()],
                **{f"sampler_score_{k}": [by_sampler[n][k] for n in SAMPLERS] for k in (*SCORES, "samples_per_s")},
                "curves": [run.curve("response_distance", longest) for run in runs.values()],
                "samples": np.stack([to_uint8(x[:n_keep]) for x in samples]),
                "sampler_samples": np.stack([to_uint8(sampled[n][:n_keep]) for n in SAMPLERS]),
                "interpolation": to_uint8(interpolation_rows(runs[AMORTIZED].model, rows, midpoints, seed))}

    grid = sweep(one, {"seed": seeds})  # per seed: the same budget for every model, then the samplers
    by_seed = {k: np.moveaxis(v, 0, 1) for k, v in grid.items()}  # (models or samplers, seeds, ...)
    return Ablation(tuple(models), tuple(seeds), np.array([budget[m] for m in models]), steps,
                    {k[6:]: v for k, v in by_seed.items() if k.startswith("score_")}, by_seed["curves"],
                    grid["samples"][0], {k[14:]: v for k, v in by_seed.items() if k.startswith("sampler_score_")},
                    grid["sampler_samples"][0], grid["interpolation"][0])


def record_ggcn_claims(metrics: dict[str, Any], result: Ablation) -> dict[str, Any]:
    """Verdicts on the chapter's four claims by the declared test (:func:`ggcn.experiments.verdicts.judge`),
    each gated on its baseline having learned (face-ruler bar on most seeds):

    * ``no-grey-spots``: wMGCN's flat-patch excess below MGCN's;
    * ``ggcn-cleaner``: GGCN−LHS+AMS's KID (face ruler) below wMGCN's (the paper's Fig. 6 b, c); the
      other GGCN variants' verdicts are kept beside it;
    * ``lhs-sharper``: GGCN+AMS's sharpness gap below GGCN−LHS+AMS's;
    * ``ams-faster``: GGCN+AMS's one pass takes less time per sample than the same model followed by
      Langevin steps, *and* its KID is higher (worse) (gate: GGCN+AMS learned); the reading with a GGCN
      trained by Langevin revision (gate: that GGCN learned) is kept beside it as ``verdict_by_text``.
    """
    missing = set(ABLATION) - set(result.models)
    if missing:
        raise ValueError(f"the claims compare all of {ABLATION}; this run lacks {sorted(missing)}")
    kid, flat, sharpness = (partial(result.score, key=k) for k in ("kid", "flat_excess", "sharpness"))
    gap = lambda m: sharpness_gap(sharpness(m))  # noqa: E731
    learned = {m: most(result.score(m, GATE) > 0.5) for m in result.models}
    tested = lambda f, a, b: f"{LABELS[a]} − {LABELS[b]}: {difference(f(a), f(b)).text()}"  # noqa: E731
    listed = lambda f, *models: ", ".join(f"{LABELS[m]} {describe(f(m))}" for m in models)  # noqa: E731
    lists = lambda f, *models: {m: f(m).tolist() for m in models}  # noqa: E731
    gate = {"learned": learned, "seeds": len(result.seeds)}

    record(metrics, "no-grey-spots", judge(flat("wmgcn"), flat("mgcn"), learned=learned["mgcn"]),
           f"flat-patch excess: {listed(flat, 'mgcn', 'wmgcn')} ({tested(flat, 'wmgcn', 'mgcn')}); "
           f"KID (face ruler): {listed(kid, 'mgcn', 'wmgcn')}",
           flat_excess=lists(flat, "mgcn", "wmgcn"), kid=lists(kid, "mgcn", "wmgcn"), **gate)

    variants = [m for m in result.models if m.startswith("ggcn")]
    per_variant = {m: judge(kid(m), kid("wmgcn"), learned=learned["wmgcn"]) for m in variants}
    record(metrics, "ggcn-cleaner", per_variant["ggcn-lhs+ams"],
           f"KID of the face ruler (not comparable to Inception KID): {listed(kid, 'wmgcn', *variants)} "
           f"({tested(kid, 'ggcn-lhs+ams', 'wmgcn')})",
           kid=lists(kid, "wmgcn", *variants), verdict_by_variant=per_variant, **gate)

    pair = ("ggcn+ams", "ggcn-lhs+ams")
    sharp, kids = (judge(g(pair[0]), g(pair[1]), learned=learned[pair[1]]) for g in (gap, kid))
    record(metrics, "lhs-sharper", sharp,
           f"sharpness (1 = the data's): {listed(sharpness, *pair)} (gap {tested(gap, *pair)}); "
           f"KID (face ruler): {listed(kid, *pair)}",
           sharpness=lists(sharpness, *pair), kid_verdict=kids, **gate)

    seconds = {k: 1 / result.sampler_score(k, "samples_per_s") for k in SAMPLERS}
    sampler_kid = {k: result.sampler_score(k, "kid") for k in SAMPLERS}

    def two_parts(slow: str, model: str) -> tuple[str, str]:  # AMS faster, and AMS's KID higher (worse)
        return (judge(seconds["ams"], seconds[slow], learned=learned[model]),
                judge(sampler_kid[slow], sampler_kid["ams"], learned=learned[model]))

    faster, worse = two_parts(SLOW, AMORTIZED)
    by_text = combine(two_parts("langevin", REVISED))
    record(metrics, "ams-faster", combine([faster, worse]),
           f"GGCN+AMS in one pass vs the same model with {result.steps} Langevin steps: speed-up "
           f"{describe(result.speedup())}× (seconds per sample, one pass − steps: "
           f"{difference(seconds['ams'], seconds[SLOW]).text()}); KID (face ruler): one pass "
           f"{describe(sampler_kid['ams'])}, with steps {describe(sampler_kid[SLOW])} (one pass − steps: "
           f"{difference(sampler_kid['ams'], sampler_kid[SLOW]).text()}). Against a GGCN trained with Langevin "
           f"revision (the paper's text): speed-up {describe(result.speedup('langevin'))}×, its KID "
           f"{describe(sampler_kid['langevin'])}, verdict {by_text}",
           faster=faster, worse=worse, verdict_by_text=by_text, speedup=result.speedup().tolist(),
           speedup_by_text=result.speedup("langevin").tolist(),
           kid={k: v.tolist() for k, v in sampler_kid.items()}, **gate)
    return metrics


def ggcn_chapter(ruler: FaceRuler, profile: Profile, seeds: Sequence[int], iterations: Mapping[str, int], *,
                 n_keep: int = 16, steps: int = 100, device: str = "cpu") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Chapter 4's runs, as ``(metrics, arrays)``: the ablation on the ruler's training faces (:func:`run_ablation`,
    as many samples as faces), the samplers and interpolations, every score beside the ruler's reference rows,
    and the verdicts of :func:`record_ggcn_claims`."""
    faces, scorer = ruler.train_images, FaceScorer(ruler)
    result = run_ablation(faces, profile, seeds, scorer, iterations=iterations, n_samples=min(len(faces), 1000),
                          n_keep=n_keep, steps=steps, rows=4, midpoints=8, device=device, family="faces")
    metrics = {
        "references": {name: scorer(x) for name, x in ruler.rows().items()}, "ruler_check": ruler.check().message,
        "flat_threshold": scorer.threshold, "n_faces": len(faces), "n_held_out": len(ruler.held_out),
        "scores": {m: {k: result.score(m, k).tolist() for k in SCORES} for m in result.models},
    }
    record_ggcn_claims(metrics, result)
    return metrics, {"data": to_uint8(faces[:n_keep]), **result.to_arrays()}
