"""Runs of the image models compared by learning rule: curves and samples on a grid
models × learning rates × image sizes × seeds.

Each run is :func:`ggcn.experiments.runs.fit` with the response distance

    D_t = Σ_k | mean_{x∈X_obs} F_k(x) − mean_{x∈X~_t} F_k(x) |

logged every iteration on the *fixed* Gabor/DoG bank (``metrics.fixed_responses``), so models with
different learned filters are measured with the same ruler. A :class:`Comparison` saves and loads itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from torch import Tensor

from ggcn.config import REGIMES, Profile, recipe
from ggcn.experiments.runs import Results, check_grid, fit, sweep
from ggcn.experiments.verdicts import (HIGHER, NOT_LEARNED, NOT_REPRODUCED, REGIME_DEPENDENT, REPRODUCED, combine,
                                       convergence, difference, failed, final_distance, judge, most, record)
from ggcn.measure.datasets import from_uint8, to_uint8
from ggcn.measure.metrics import fixed_responses, response_distance_callback
from ggcn.measure.rulers import Ruler
from ggcn.models.registry import MODELS

Data = Tensor | Callable[[int], Tensor]


def base_settings(profile: Profile, family: str | None = None, models: Sequence[str] = ("gcn",)) -> dict[str, float]:
    """The γ (``lr``) and δ (``step_size``) that regimes and the Fig. 4 grid multiply: those of the
    recipe of the baseline ``models[0]`` on ``family`` (every model compared runs at the baseline's
    settings, so that only the learning rule differs), or the profile's without a family."""
    options = vars(profile) if family is None else recipe(models[0], family).options
    return {key: options[key] for key in ("lr", "step_size")}


def regime(name: str, profile: Profile, family: str | None = None,
           models: Sequence[str] = ("gcn",)) -> dict[str, float]:
    """The ``build_model`` overrides of the named regime: multiples of :func:`base_settings`."""
    if name not in REGIMES:
        raise ValueError(f"unknown regime {name!r}; choose one of {sorted(REGIMES)}")
    base = base_settings(profile, family, models)
    return {key: factor * base[key] for key, factor in REGIMES[name].items()}


def grid_settings(profile: Profile, family: str | None = None,
                  models: Sequence[str] = ("gcn",)) -> tuple[tuple[float, float], tuple[int, int]]:
    """The learning-rate × image-size grid of the paper's Fig. 4: γ ∈ {base, 3·base} (base from
    :func:`base_settings`) and sides {size/2, size} (size the profile's image size)."""
    lr = base_settings(profile, family, models)["lr"]
    return (lr, 3 * lr), (profile.image_size // 2, profile.image_size)


# The per-iteration quantities kept from every run: the response distance D_t, the mean input-gradient
# norm ||∇_x f_θ|| along the Langevin chain and the energy gap mean f(X_obs) − mean f(X~).
CURVES = ("response_distance", "grad_norm", "energy_gap")
RESPONSE_FILTERS = ("fixed", "own")  # F_k of the response distance: the fixed Gabor/DoG bank, or the model's own


@dataclass
class Run:
    """What one training run leaves: its curves and its final particles."""

    curves: dict[str, np.ndarray]  # CURVES -> (iterations,), NaN after a divergence
    particles: np.ndarray  # uint8 (n, C, H, W), the last good particles X~
    diverged_at: int  # the iteration that produced non-finite values, −1 if none


def run_one(name: str, data: Tensor, profile: Profile, seed: int, *, iterations: int | None = None, n_keep: int = 16,
            ruler: str = "fixed", device: str = "cpu", **overrides: Any) -> Run:
    """Train ``name`` on ``data`` (at its size) and keep its curves and particles; a diverged run stops
    (NaN) where it broke and keeps its last good particles. ``ruler="own"`` measures on the model's
    first-layer filters, as Xie et al. do; ``overrides`` go to ``build_model`` (``family``, ``lr``, ...)."""
    if data.dim() != 4:
        raise ValueError(f"data must be an image batch (N, C, H, W), got shape {tuple(data.shape)}")
    if ruler not in RESPONSE_FILTERS:
        raise ValueError(f"unknown ruler {ruler!r}; choose 'fixed' (Gabor/DoG bank) or 'own' (the model's filters)")
    iterations = profile.iterations if iterations is None else iterations
    responses = fixed_responses(data.shape[1]) if ruler == "fixed" else None

    def callback(it: int, model: Any, x_obs: Tensor) -> dict[str, float]:
        return response_distance_callback(model.responses if responses is None else responses)(it, model, x_obs)

    run = fit(name, data, profile, seed, iterations=iterations, callbacks=[callback], device=device, **overrides)
    curves = {key: run.curve(key, iterations) for key in CURVES}
    return Run(curves, to_uint8(run.model.particles[:n_keep]), run.diverged_at)


@dataclass
class Comparison(Results):
    """Runs on a grid models × lrs × sizes × seeds.

    ``curves[key]``: (models, lrs, sizes, seeds, iterations) for each key of :data:`CURVES`;
    ``samples[size]``: uint8 (models, lrs, seeds, n, C, size, size) final particles;
    ``diverged_at``: (models, lrs, sizes, seeds), −1 where a run did not diverge.
    """

    models: tuple[str, ...]
    lrs: tuple[float, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    curves: dict[str, np.ndarray]
    samples: dict[int, np.ndarray]
    diverged_at: np.ndarray

    def _index(self, lr: float | None, size: int | None) -> tuple[int, int]:
        lr = self.lrs[0] if lr is None else lr
        size = self.sizes[0] if size is None else size
        match = [i for i, v in enumerate(self.lrs) if np.isclose(v, lr)]
        if not match or size not in self.sizes:
            raise KeyError(f"no runs at lr={lr}, size={size}; this comparison has lrs {self.lrs}, sizes {self.sizes}")
        return match[0], self.sizes.index(size)

    def curves_at(self, lr: float | None = None, size: int | None = None,
                  key: str = "response_distance") -> dict[str, np.ndarray]:
        """``{model: (seeds, iterations)}`` at one setting (the first when not given), for ``viz.curves``."""
        if key not in self.curves:
            raise KeyError(f"no curve {key!r}; recorded curves: {sorted(self.curves)}")
        i, j = self._index(lr, size)
        return {m: self.curves[key][k, i, j] for k, m in enumerate(self.models)}

    def samples_at(self, model: str, lr: float | None = None, size: int | None = None, seed_index: int = 0) -> Tensor:
        """The final particles of one run as a float tensor in [−1, 1]."""
        if model not in self.models:
            raise KeyError(f"no runs of {model!r}; this comparison has {self.models}")
        i, j = self._index(lr, size)
        return from_uint8(self.samples[self.sizes[j]][self.models.index(model), i, seed_index])


def compare_rules(models: Sequence[str], data: Data, profile: Profile, seeds: Sequence[int], *,
                  lrs: Sequence[float] | None = None, sizes: Sequence[int] | None = None,
                  iterations: int | None = None, n_keep: int = 16, ruler: str = "fixed", device: str = "cpu",
                  **overrides: Any) -> Comparison:
    """Train every model at every (lr, size) for every seed with the same budget (:func:`run_one`).

    ``data``: a batch (used at its size) or a function ``size -> batch``. ``lrs`` default to the baseline
    recipe's γ with a ``family``, else the profile's (:func:`base_settings`). Same seed, same initial
    weights and particles across models, so differences come from the learning rule.
    """
    if "lr" in overrides:
        raise ValueError("pass learning rates as lrs=[...], not lr=")
    check_grid(models, MODELS, seeds)
    if isinstance(data, Tensor):
        sizes = tuple(sizes or (data.shape[-1],))
        if sizes != (data.shape[-1],):
            raise ValueError(f"data is a fixed {data.shape[-1]}×{data.shape[-1]} batch but sizes={sizes} were asked; "
                             "pass a function size -> batch (e.g. lambda s: lfw_faces(s, n)) instead")
        load = lambda size: data  # noqa: E731
    else:
        sizes, load = tuple(sizes or (profile.image_size,)), data
    lrs = tuple(lrs or (base_settings(profile, overrides.get("family"), models)["lr"],))
    grids = {}
    for size in sizes:
        x = load(size)

        def one(model: str, lr: float, seed: int) -> dict[str, Any]:
            run = run_one(model, x, profile, seed, iterations=iterations, n_keep=n_keep, ruler=ruler, device=device,
                          **overrides, lr=lr)
            return {**run.curves, "particles": run.particles, "diverged_at": run.diverged_at}

        grids[size] = sweep(one, {"model": models, "lr": lrs, "seed": seeds})
    stacked = lambda key: np.stack([grid[key] for grid in grids.values()], 2)  # noqa: E731  (the size axis)
    return Comparison(tuple(models), lrs, sizes, tuple(seeds), {key: stacked(key) for key in CURVES},
                      {size: grid["particles"] for size, grid in grids.items()}, stacked("diverged_at"))


def compare_regimes(models: Sequence[str], data: Data, profile: Profile, seeds: Sequence[int],
                    regimes: Sequence[str] = ("stable", "unstable"), **kwargs: Any) -> dict[str, Comparison]:
    """:func:`compare_rules` once per named regime of :data:`REGIMES` (its γ and δ replace the
    recipe's, or the profile's without a ``family``); ``kwargs`` go to :func:`compare_rules`
    (e.g. ``family``, ``jko_weight``, ``iterations``)."""
    if "lr" in kwargs or "lrs" in kwargs or "step_size" in kwargs:
        raise ValueError("a regime sets lr and step_size itself; add a named regime to REGIMES instead")
    out = {}
    for name in regimes:
        settings = regime(name, profile, kwargs.get("family"), models)
        out[name] = compare_rules(models, data, profile, seeds, lrs=[settings.pop("lr")], **settings, **kwargs)
    return out


def outcomes(curves: Sequence[np.ndarray]) -> dict[str, Any]:
    """Per run ``final`` distance (:func:`verdicts.final_distance`) and how many runs ``failed``."""
    return {"final": [final_distance(c) for c in curves], "failed": sum(failed(c) for c in curves)}


def ruler_passes(ruler: Ruler | None, comparison: Comparison, model: str) -> tuple[list[float], list[bool]]:
    """Per seed: the ``ruler``'s primary score of ``model``'s final particles (first γ and size) and whether
    it clears the ruler's learned bar; with no ruler, no scores and the bar "its distance fell"
    (:func:`verdicts.failed`)."""
    if ruler is None:
        return [], [not failed(c) for c in comparison.curves_at()[model]]
    scores = [ruler.score(comparison.samples_at(model, seed_index=k)) for k in range(len(comparison.seeds))]
    return [s[ruler.primary] for s in scores], [ruler.learned(s) for s in scores]


def record_wgcn_claims(metrics: dict[str, Any], summaries: dict[str, dict[str, list[float]]],
                       stable: Comparison, sweep: dict[str, Comparison],
                       variants: dict[str, tuple[str, Comparison, str]] | None = None,
                       ruler: Ruler | None = None) -> dict[str, Any]:
    """Record this chapter's verdicts on the paper's Fig. 5 and Fig. 4 claims in ``metrics``.

    * "faster-convergence": wGCN (recipe's λ) ends lower *and* has a lower area under the curve than
      GCN by the declared test (:func:`ggcn.experiments.verdicts.convergence`); either higher → not.
      Gate: GCN learned in ``stable``: its final particles clear the ``ruler``'s bar on most seeds
      (without a ruler: its distance fell on most seeds, :func:`ruler_passes`).
    * "stability": :func:`record_stability` on the graded ``sweep`` of regimes (and its ``variants``).
    """
    _, passed = ruler_passes(ruler, stable, "gcn")
    fc = convergence(summaries["wgcn"], summaries["gcn"], learned=most(passed))
    record(metrics, "faster-convergence", fc.verdict, fc.text, seeds=len(summaries["gcn"]["final"]),
           gcn_passed=sum(passed), gate=_gate(ruler))
    return record_stability(metrics, sweep, variants=variants, ruler=ruler)


def _gate(ruler: Ruler | None) -> str:
    """The bar of the gate, in words."""
    return "its distance fell" if ruler is None else f"the {ruler.name} ruler's learned bar"


def record_stability(metrics: dict[str, Any], sweep: dict[str, Comparison], base: str = "stable",
                     variants: dict[str, tuple[str, Comparison, str]] | None = None,
                     ruler: Ruler | None = None) -> dict[str, Any]:
    """The "stability" verdict (Fig. 4) on a sweep of named regimes (:data:`REGIMES`, ``base`` among them).

    In each regime GCN *broke* if its final distances are higher than at ``base`` by the declared test
    (Welch's t, or Fisher's exact test on diverged runs); there wGCN is judged against GCN. Reproduced if
    wGCN is lower wherever GCN broke, not reproduced if it is higher somewhere and lower nowhere,
    regime-dependent if both happen, inconclusive if GCN broke nowhere. Every cell also keeps each seed's
    ``ruler`` score and how many seeds cleared its bar. Gate: GCN cleared the bar at ``base`` on most
    seeds (:func:`ruler_passes`). ``variants`` ({label: (regime, comparison, model)}: other λ, other
    readings) are compared with GCN in their regime by the same test and recorded as evidence; the verdict
    is the recipe's wGCN's.
    """
    passes = {r: {m: ruler_passes(ruler, comparison, m) for m in ("gcn", "wgcn")} for r, comparison in sweep.items()}
    cells = {r: {m: {**outcomes(sweep[r].curves_at()[m]), "quality": quality, "passed": sum(passed)}
                 for m, (quality, passed) in by_model.items()} for r, by_model in passes.items()}
    learned = most(passes[base]["gcn"][1])
    final = {r: {m: cell[m]["final"] for m in ("gcn", "wgcn")} for r, cell in cells.items()}
    for r, cell in cells.items():
        if r != base:
            broke = difference(final[r]["gcn"], final[base]["gcn"])
            cell.update(gcn_broke=broke.to_dict(), wgcn_vs_gcn=difference(final[r]["wgcn"], final[r]["gcn"]).to_dict(),
                        wgcn_broke=difference(final[r]["wgcn"], final[base]["wgcn"]).to_dict(),
                        verdict=judge(final[r]["wgcn"], final[r]["gcn"]) if broke.result == HIGHER else None)
    broken = [r for r, c in cells.items() if c.get("verdict")]
    judged = [cells[r]["verdict"] for r in broken]
    verdict = NOT_LEARNED if not learned else \
        REGIME_DEPENDENT if {REPRODUCED, NOT_REPRODUCED} <= set(judged) else combine(judged)
    wgcn_broken = [r for r, c in cells.items() if r != base and c["wgcn_broke"]["result"] == HIGHER]
    others = {}
    for label, (r, comp, model) in (variants or {}).items():
        outcome = outcomes(comp.curves_at()[model])
        others[label] = {"regime": r, **outcome, "vs_gcn": difference(outcome["final"], final[r]["gcn"]).to_dict()}
    n = len(final[base]["gcn"])
    measured = (f"{len(sweep)} regimes (γ, δ as multiples of the recipe's: "
                + ", ".join(f"{r} γ×{REGIMES[r]['lr']:g} δ×{REGIMES[r]['step_size']:g}" for r in sweep)
                + f"), {n} seeds each; GCN broke (final distance above its {base} one) in "
                + (", ".join(f"{r} ({cells[r]['gcn_broke']['text']}; wGCN − GCN there: "
                             f"{cells[r]['wgcn_vs_gcn']['text']})" for r in broken) if broken else "no regime")
                + "; wGCN's own distance rose above its " + base + " one in "
                + (", ".join(wgcn_broken) if wgcn_broken else "no regime")
                + "".join(f"; {label} − GCN in {v['regime']}: {v['vs_gcn']['text']}"
                          for label, v in others.items())
                + f"; seeds clearing {_gate(ruler)} (GCN, wGCN): "
                + ", ".join(f"{r} {c['gcn']['passed']}/{n}, {c['wgcn']['passed']}/{n}" for r, c in cells.items()))
    return record(metrics, "stability", verdict, measured, seeds=n, cells=cells, learned=learned, broken=broken,
                  wgcn_broken=wgcn_broken, variants=others, gate=_gate(ruler))
