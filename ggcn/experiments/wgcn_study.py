"""Chapter 3's runs (the paper's Figs. 4 and 5): GCN against the three readings of wGCN on faces.

* (a) samples and (c) response-distance curves D_t, :attr:`Study.convergence_seeds` seeds of GCN and
  wGCN (the other readings and wGCN with the paper's λ on :attr:`Study.seeds`);
* (b) the learning-rate × image-size grid of Fig. 4; (d) the graded sweep of :data:`ggcn.config.STABILITY_SWEEP`,
  with wGCN at other λ and the other readings in the unstable regime.

Every model takes the faces recipe of :func:`ggcn.config.recipe`; the profile sets sizes and budget.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ggcn.config import REGIMES, STABILITY_SWEEP, Profile, get_profile, recipe
from ggcn.experiments import verdicts
from ggcn.experiments.rules import Comparison, compare_regimes, compare_rules, grid_settings, record_wgcn_claims
from ggcn.measure import data
from ggcn.measure.datasets import to_uint8
from ggcn.measure.rulers import FaceRuler, face_ruler

RULE_MODELS = ("gcn", "wgcn", "wgcn-data", "wgcn-proximal")  # the KL rule and the three readings of the JKO rule
GRID_MODELS = ("gcn", "wgcn")  # the two models of the paper's Fig. 4
OTHER_READINGS = RULE_MODELS[2:]
RECIPE = recipe("wgcn", "faces")  # the faces recipe of wGCN; GCN's is the same without λ
PAPER_LAMBDA = get_profile("paper").jko_weight  # the paper's λ for CelebA, as it states it
PAPER_RULE = {"jko_weight": PAPER_LAMBDA, "jko_scale": "paper"}  # ... in the paper's own unit
PAPER = "wgcn-paper"  # wGCN (consecutive) with PAPER_RULE, for parts (c) and (d)
RULE_LABELS = {"gcn": "GCN", "wgcn": "wGCN (consecutive)", "wgcn-data": "wGCN (data)",
          "wgcn-proximal": "wGCN (proximal)", PAPER: f"wGCN (consecutive, paper's λ = {PAPER_LAMBDA:g})"}
LAMBDA_FACTORS = (10, 100)  # wGCN in the unstable regime at λ × these (the recipe's λ and the paper's beside)
ITERATIONS = 100  # at most: the teach profile's 150 would put the chapter over its 15 CPU-minutes, and
# part (c)'s curves have settled well before iteration 100 (they fall within the first 40)


@dataclass(frozen=True)
class Study:
    """The chapter's settings at a profile and seed.

    ``size``: side of the images of parts (a), (c), (d); ``convergence_seeds``: at least eight, for the claim
    "converges faster"; ``grid_*``: Fig. 4's γ ∈ {recipe's, 3×} and sides {size/2, size} at a third of the
    budget (the 4 runs at the full side cost most); ``sweep_*``: part (d), at least five seeds (a run takes
    well under a CPU-minute), two fifths of the budget (GCN's distance has fallen most of the way by then).
    """

    profile: Profile
    seed: int
    faces: str  # LFW ships with scikit-image; CelebA needs a data root
    data_root: str | None
    size: int
    seeds: tuple[int, ...]
    convergence_seeds: tuple[int, ...]
    grid_lrs: tuple[float, ...]
    grid_sizes: tuple[int, ...]
    grid_iterations: int
    sweep_seeds: tuple[int, ...]
    sweep_iterations: int

    def ruler(self) -> FaceRuler | None:
        """The face ruler at ``size`` on LFW (its 60 training faces, seed ``seed``); None on CelebA, which it
        cannot read (the gates then fall back to "the distance fell")."""
        return face_ruler(self.seed, self.size) if self.faces == "lfw" else None

    def load_faces(self, size: int) -> Tensor:
        return data.load_images(self.faces, self.data_root, size, n=self.profile.n_images, seed=self.seed)

    def params(self) -> dict[str, Any]:
        """What makes the chapter's runs, for :func:`ggcn.book.artifacts.load_or_run`."""
        return {**asdict(self), "profile": self.profile.name, "iterations": self.profile.iterations,
                "paper_rule": PAPER_RULE, "recipe": dict(RECIPE.options),
                "sweep": {r: REGIMES[r] for r in STABILITY_SWEEP}, "lambda_factors": list(LAMBDA_FACTORS)}


def study(profile: str, seed: int = 0, data_root: str | Path | None = None) -> Study:
    """The chapter's :class:`Study` at the named profile (its iterations capped at :data:`ITERATIONS`)."""
    cfg = get_profile(profile, iterations=min(get_profile(profile).iterations, ITERATIONS))
    lrs, sizes = grid_settings(cfg, "faces", GRID_MODELS)
    at_least = lambda n: tuple(seed + k for k in range(max(cfg.n_seeds, n)))  # noqa: E731  (the profile's, or n)
    return Study(cfg, seed, "lfw" if data_root is None else "celeba", None if data_root is None else str(data_root),
                 cfg.image_size // 2, at_least(0), at_least(8), lrs, sizes, max(1, cfg.iterations // 3),
                 at_least(verdicts.CHEAP_SEEDS), max(1, 2 * cfg.iterations // 5))


def run_keys() -> tuple[str, ...]:
    """The names of the chapter's comparisons in its arrays."""
    return ("faces", "readings", "faces_paper", "grid", "unstable_paper",
            *(f"unstable_lambda{k:g}" for k in LAMBDA_FACTORS), "unstable_readings",
            *(f"sweep_{regime}" for regime in STABILITY_SWEEP))


def lambda_label(factor: float | None) -> str:
    """How the λ of a stability variant is written: a multiple of the recipe's, or the paper's (None)."""
    return f"wGCN with the paper's λ = {PAPER_LAMBDA:g} (its unit)" if factor is None else \
        f"wGCN with λ = {factor * RECIPE.options['jko_weight']:g} (units of h, {factor:g}× the recipe's)"


def face_curves(runs: dict[str, Comparison], key: str = "response_distance") -> dict[str, np.ndarray]:
    """{variant: (seeds, iterations)} for GCN, the wGCN readings and wGCN with the paper's λ."""
    return {**runs["faces"].curves_at(key=key), **runs["readings"].curves_at(key=key),
            PAPER: runs["faces_paper"].curves_at(key=key)["wgcn"]}


def wgcn_chapter(s: Study, device: str = "cpu") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every run of the chapter, as ``(metrics, arrays)`` with the verdicts on "faster-convergence" and
    "stability" (:func:`ggcn.experiments.rules.record_wgcn_claims`), gated on :meth:`Study.ruler`."""
    cfg, face_data = s.profile, s.load_faces(s.size)
    on_faces = {"family": "faces", "device": device}

    def unstable(models: tuple[str, ...], **overrides: Any) -> Comparison:
        return compare_regimes(models, face_data, cfg, s.sweep_seeds, regimes=["unstable"],
                               iterations=s.sweep_iterations, **on_faces, **overrides)["unstable"]

    runs = {"faces": compare_rules(GRID_MODELS, face_data, cfg, s.convergence_seeds, **on_faces),
            "readings": compare_rules(OTHER_READINGS, face_data, cfg, s.seeds, **on_faces),
            "faces_paper": compare_rules(["wgcn"], face_data, cfg, s.seeds, **on_faces, **PAPER_RULE),
            "grid": compare_rules(GRID_MODELS, s.load_faces, cfg, [s.seed], lrs=s.grid_lrs, sizes=s.grid_sizes,
                                  iterations=s.grid_iterations, **on_faces),
            "unstable_paper": unstable(("wgcn",), **PAPER_RULE),
            **{f"unstable_lambda{k:g}": unstable(("wgcn",), jko_weight=k * RECIPE.options["jko_weight"])
               for k in LAMBDA_FACTORS},
            "unstable_readings": unstable(OTHER_READINGS)}
    sweep = compare_regimes(GRID_MODELS, face_data, cfg, s.sweep_seeds, regimes=STABILITY_SWEEP,
                            iterations=s.sweep_iterations, **on_faces)
    runs.update({f"sweep_{regime}": comparison for regime, comparison in sweep.items()})
    arrays = {"data_faces": to_uint8(face_data[:16]),
              **{k: v for key, comparison in runs.items() for k, v in comparison.to_arrays(prefix=f"{key}_").items()}}
    summaries = {name: verdicts.seed_summary(curves) for name, curves in face_curves(runs).items()}
    variants = {**{lambda_label(k): ("unstable", runs[f"unstable_lambda{k:g}"], "wgcn") for k in LAMBDA_FACTORS},
                lambda_label(None): ("unstable", runs["unstable_paper"], "wgcn"),
                **{f"{RULE_LABELS[m]}, recipe's λ": ("unstable", runs["unstable_readings"], m) for m in OTHER_READINGS}}
    ruler = s.ruler()
    metrics = record_wgcn_claims({"faces": summaries}, summaries, runs["faces"], sweep, variants, ruler=ruler)
    if ruler is not None:
        metrics["ruler"] = {"check": ruler.check().message, "bar": ruler.bar,
                            "references": {row: scores[ruler.primary] for row, scores in ruler.references().items()}}
    return metrics, arrays
