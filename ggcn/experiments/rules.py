"""Experiment runners: many training runs of the package's models, kept as curves and samples.

A runner loops over models × learning rates × image sizes × seeds; each run is
``build_model`` + the one training loop ``train``, with the response distance

    D_t = Σ_k | mean_{x∈X_obs} F_k(x) − mean_{x∈X~_t} F_k(x) |

logged every iteration on the *fixed* Gabor/DoG bank (``metrics.fixed_responses``), so that
models with different learned filters are measured with the same ruler. Nothing here defines
a model or a training loop; the runners only choose settings and collect what the runs leave behind.

Results are plain arrays (:meth:`Comparison.to_arrays`), so a chapter can store them as an
artifact with ``ggcn.book.artifacts.load_or_run`` and rebuild the :class:`Comparison` from it.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ggcn.book import claims
from ggcn.config import Profile, recipe
from ggcn.measure.metrics import fixed_responses, response_distance_callback
from ggcn.models.registry import MODELS, build_model
from ggcn.experiments.particle_world import final_distance, verdict, versus
from ggcn.core.train import DivergenceError, load_checkpoint, train

Data = Tensor | Callable[[int], Tensor]

# Named regimes for the stable-vs-unstable demonstration: build_model overrides as
# multiples of the base values of :func:`base_settings` (learning rate γ, Langevin step δ: the
# recipe's with a data family, else the profile's). "unstable" was chosen, on the profile's
# values, so that a GCN on 16×16 faces at the teach profile saturates into stripes within its run.
REGIMES: dict[str, dict[str, float]] = {
    "stable": {"lr": 1.0, "step_size": 1.0},
    "unstable": {"lr": 30.0, "step_size": 3.0},
}


def base_settings(profile: Profile, family: str | None = None, models: Sequence[str] = ("gcn",)) -> dict[str, float]:
    """The γ (``lr``) and δ (``step_size``) that regimes and the Fig. 4 grid multiply: those of the
    recipe of the baseline ``models[0]`` on ``family`` (every model compared runs at the baseline's
    settings, so that only the learning rule differs), or the profile's without a family."""
    keys = ("lr", "step_size")
    if family is None:
        return {key: getattr(profile, key) for key in keys}
    return {key: recipe(models[0], family).options[key] for key in keys}


def regime(name: str, profile: Profile, family: str | None = None, models: Sequence[str] = ("gcn",)) -> dict[str, float]:
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


def to_uint8(x: Tensor) -> np.ndarray:
    """Images in [−1, 1] as uint8 in [0, 255] (small artifacts)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(x: np.ndarray) -> Tensor:
    """The inverse of :func:`to_uint8`, back to a float tensor in [−1, 1]."""
    return torch.as_tensor(np.asarray(x), dtype=torch.float32) / 127.5 - 1


# The per-iteration quantities kept from every run: the response distance D_t, the mean input-
# gradient norm ||∇_x f_θ|| along the Langevin chain (how hard the energy pushes the particles)
# and the energy gap mean f(X_obs) − mean f(X~).
CURVES = ("response_distance", "grad_norm", "energy_gap")


@dataclass
class Run:
    """What one training run leaves: its curves and its final particles."""

    curves: dict[str, np.ndarray]  # CURVES -> (iterations,), NaN after a divergence
    particles: np.ndarray  # uint8 (n, C, H, W), the last good particles X~
    diverged_at: int  # the iteration that produced non-finite values, −1 if none


RULERS = ("fixed", "own")  # the filters F_k of the response distance: fixed Gabor/DoG bank, or the model's own


def run_one(
    name: str,
    data: Tensor,
    profile: Profile,
    seed: int,
    *,
    iterations: int | None = None,
    n_keep: int = 16,
    ruler: str = "fixed",
    device: str = "cpu",
    **overrides: Any,
) -> Run:
    """Train model ``name`` on ``data`` at the data's image size and return a :class:`Run`.

    ``ruler="fixed"`` measures the response distance on the Gabor/DoG bank (the same for every
    model); ``"own"`` on the model's first-layer filters, as Xie et al. do (they change while it
    learns). ``overrides`` go to ``build_model`` (``family`` for its recipe, ``lr``, ``jko_weight``, ...). A run
    that diverges is not an error here: its curves stop (NaN) where it broke and its particles are
    the last finite ones, so unstable settings can be shown on purpose.
    """
    if data.dim() != 4:
        raise ValueError(f"data must be an image batch (N, C, H, W), got shape {tuple(data.shape)}")
    if ruler not in RULERS:
        raise ValueError(f"unknown ruler {ruler!r}; choose 'fixed' (Gabor/DoG bank) or 'own' (the model's filters)")
    iterations = profile.iterations if iterations is None else iterations
    channels, size = data.shape[1], data.shape[-1]
    model = build_model(name, profile, channels, size, device=device, seed=seed, **overrides)
    callback = response_distance_callback(fixed_responses(channels) if ruler == "fixed" else model.responses)
    diverged_at = -1
    with tempfile.TemporaryDirectory(prefix="ggcn-run-") as tmp:
        try:
            records = train(model, data, iterations, batch_size=profile.batch_size, seed=seed,
                            callbacks=[callback], checkpoint_dir=tmp, device=device).records
            particles = model.particles
        except DivergenceError as err:
            state = load_checkpoint(err.checkpoint)
            records, diverged_at = state["history"], len(state["history"])
            particles = state["model"]["init"].get("x", model.particles)
    curves = {key: np.full(iterations, np.nan, dtype=np.float32) for key in CURVES}
    for key, curve in curves.items():
        curve[: len(records)] = [r.get(key, np.nan) for r in records]
    return Run(curves, to_uint8(particles[:n_keep]), diverged_at)


@dataclass
class Comparison:
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

    def curves_at(
        self, lr: float | None = None, size: int | None = None, key: str = "response_distance"
    ) -> dict[str, np.ndarray]:
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

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Flat arrays for ``np.savez`` (the inverse of :meth:`from_arrays`)."""
        arrays = {
            "models": np.array(self.models), "lrs": np.array(self.lrs), "sizes": np.array(self.sizes),
            "seeds": np.array(self.seeds), "diverged_at": self.diverged_at,
            **{f"curve_{k}": v for k, v in self.curves.items()},
            **{f"samples_{s}": v for s, v in self.samples.items()},
        }
        return {prefix + k: v for k, v in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> "Comparison":
        get = lambda key: np.asarray(arrays[prefix + key])  # noqa: E731
        sizes = tuple(int(s) for s in get("sizes"))
        curves = {k[len(prefix) + 6:]: np.asarray(v) for k, v in arrays.items() if k.startswith(prefix + "curve_")}
        return cls(
            models=tuple(str(m) for m in get("models")), lrs=tuple(float(v) for v in get("lrs")),
            sizes=sizes, seeds=tuple(int(s) for s in get("seeds")), curves=curves,
            samples={s: get(f"samples_{s}") for s in sizes}, diverged_at=get("diverged_at"),
        )


def compare_rules(
    models: Sequence[str],
    data: Data,
    profile: Profile,
    seeds: Sequence[int],
    *,
    lrs: Sequence[float] | None = None,
    sizes: Sequence[int] | None = None,
    iterations: int | None = None,
    n_keep: int = 16,
    ruler: str = "fixed",
    device: str = "cpu",
    **overrides: Any,
) -> Comparison:
    """Train every model at every (lr, size) for every seed, all with the same budget.

    ``data`` is an image batch (used at its own size) or a function ``size -> batch``
    (needed when ``sizes`` has more than one entry). ``lrs`` defaults to the recipe's γ when
    ``overrides`` name a ``family``, else the profile's (:func:`base_settings`); ``sizes`` to the
    data's size (or the profile's); ``ruler`` as in :func:`run_one`. Same seed, same initial
    weights and particles across models, so differences come from the learning rule.
    """
    if "lr" in overrides:
        raise ValueError("pass learning rates as lrs=[...], not lr=")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    if not seeds:
        raise ValueError("give at least one seed (profile.n_seeds seeds give mean ± sd bands)")
    if isinstance(data, Tensor):
        sizes = tuple(sizes or (data.shape[-1],))
        if sizes != (data.shape[-1],):
            raise ValueError(f"data is a fixed {data.shape[-1]}×{data.shape[-1]} batch but sizes={sizes} were asked; "
                             "pass a function size -> batch (e.g. lambda s: lfw_faces(s, n)) instead")
        load = lambda size: data  # noqa: E731
    else:
        sizes, load = tuple(sizes or (profile.image_size,)), data
    lrs = tuple(lrs or (base_settings(profile, overrides.get("family"), models)["lr"],))
    iterations = profile.iterations if iterations is None else iterations
    shape = (len(models), len(lrs), len(sizes), len(seeds))
    curves = {key: np.full((*shape, iterations), np.nan, dtype=np.float32) for key in CURVES}
    diverged = np.full(shape, -1, dtype=np.int64)
    samples: dict[int, np.ndarray] = {}
    for j, size in enumerate(sizes):
        x = load(size)
        for k, name in enumerate(models):
            for i, lr in enumerate(lrs):
                for s, seed in enumerate(seeds):
                    run = run_one(name, x, profile, seed, iterations=iterations, n_keep=n_keep, ruler=ruler,
                                  device=device, **overrides, lr=lr)
                    for key in CURVES:
                        curves[key][k, i, j, s] = run.curves[key]
                    diverged[k, i, j, s] = run.diverged_at
                    if size not in samples:
                        samples[size] = np.zeros((len(models), len(lrs), len(seeds), *run.particles.shape), np.uint8)
                    samples[size][k, i, s] = run.particles
    return Comparison(tuple(models), lrs, sizes, tuple(seeds), curves, samples, diverged)


def compare_regimes(
    models: Sequence[str],
    data: Data,
    profile: Profile,
    seeds: Sequence[int],
    regimes: Sequence[str] = ("stable", "unstable"),
    **kwargs: Any,
) -> dict[str, Comparison]:
    """:func:`compare_rules` once per named regime of :data:`REGIMES` (its γ and δ replace the
    recipe's, or the profile's without a ``family``); ``kwargs`` go to :func:`compare_rules`
    (e.g. ``family``, ``jko_weight``, ``iterations``)."""
    if "lr" in kwargs or "lrs" in kwargs or "step_size" in kwargs:
        raise ValueError("a regime sets lr and step_size itself; add a named regime to REGIMES instead")
    out = {}
    for name in regimes:
        settings = regime(name, profile, kwargs.get("family"), models)
        lr = settings.pop("lr")
        out[name] = compare_rules(models, data, profile, seeds, lrs=[lr], **settings, **kwargs)
    return out


# ---------------------------------------------------------------------------
# Summaries: the numbers a chapter puts beside the paper's claims. Per-seed values, compared
# conservatively with the same rules as the 2-D world (ggcn.experiments.particle_world.verdict).


def area_under_curve(curve: np.ndarray) -> float:
    """The mean response distance over the run (area under the curve ÷ its length; ∞ if it diverged).
    Lower means the particles got close to the data sooner."""
    curve = np.asarray(curve, dtype=float)
    return float(curve.mean()) if np.isfinite(curve).all() else float("inf")


def seed_summary(curves: np.ndarray, last: float = 0.25) -> dict[str, list[float]]:
    """Per-seed ``final`` (mean of the last ``last`` fraction of iterations, ∞ if diverged; see
    ``particles.final_distance``) and ``auc`` (:func:`area_under_curve`) of a (seeds, iterations) array."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    return {"final": [final_distance(c, last) for c in curves], "auc": [area_under_curve(c) for c in curves]}


@dataclass(frozen=True)
class Claim:
    """The outcome of testing "the candidate ends lower and converges faster than the baseline"."""

    final: str  # "lower", "higher" or "indistinguishable within the seed spread" (particles.verdict)
    auc: str
    reproduced: bool  # both lower
    text: str  # one sentence for the book


def claim_verdict(candidate: dict[str, list[float]], baseline: dict[str, list[float]],
                  names: tuple[str, str] = ("wGCN", "GCN")) -> Claim:
    """Whether ``candidate`` ends lower *and* converges faster than ``baseline`` beyond the seed
    spread (every seed beats every seed, ``particles.verdict``); inputs from :func:`seed_summary`."""
    cand, base = names
    final, auc = verdict(candidate["final"], baseline["final"]), verdict(candidate["auc"], baseline["auc"])
    reproduced = final == "lower" and auc == "lower"
    owner = f"{base}'s"
    text = (f"{cand}: the final response distance is {versus(final, owner)}, and the area under the curve is "
            f"{versus(auc, owner)}; the claim that {cand} ends lower and converges faster "
            f"{'reproduces' if reproduced else 'does not reproduce'} here.")
    return Claim(final, auc, reproduced, text)


def record_claims(metrics: dict[str, Any], summaries: dict[str, dict[str, list[float]]],
                  stable: "Comparison", unstable: "Comparison") -> dict[str, Any]:
    """Record this chapter's verdicts on the paper's Fig. 5 and Fig. 4 claims in ``metrics``.

    * "faster-convergence": wGCN (paper's λ) ends lower *and* has a lower area under the curve
      than GCN beyond the seed spread (:func:`claim_verdict`); either one higher → not reproduced.
    * "stability": in the unstable regime GCN's final distance grows more than twofold over its
      stable-regime value while wGCN's does not (first seed). If GCN does not break, the regime
      did not test the claim → inconclusive.
    """
    fc = claim_verdict(summaries["wgcn"], summaries["gcn"])
    if fc.reproduced:
        fc_verdict = claims.REPRODUCED
    elif "higher" in (fc.final, fc.auc):
        fc_verdict = claims.NOT_REPRODUCED
    else:
        fc_verdict = claims.INCONCLUSIVE
    claims.record(metrics, "faster-convergence", fc_verdict, fc.text, seeds=len(summaries["gcn"]["final"]))
    final = {(regime, m): final_distance(comp.curves_at()[m][0])
             for regime, comp in (("stable", stable), ("unstable", unstable)) for m in ("gcn", "wgcn")}
    gcn_breaks = final["unstable", "gcn"] > 2 * final["stable", "gcn"]
    wgcn_holds = final["unstable", "wgcn"] <= 2 * final["stable", "wgcn"]
    verdict_ = (claims.INCONCLUSIVE if not gcn_breaks
                else claims.REPRODUCED if wgcn_holds else claims.NOT_REPRODUCED)
    factors = REGIMES["unstable"]
    measured = (f"unstable regime ({factors['lr']:g}× learning rate, {factors['step_size']:g}× Langevin step), "
                f"one seed: final response distance "
                f"GCN {final['stable', 'gcn']:.3g} → {final['unstable', 'gcn']:.3g}, "
                f"wGCN {final['stable', 'wgcn']:.3g} → {final['unstable', 'wgcn']:.3g} (stable → unstable)")
    claims.record(metrics, "stability", verdict_, measured, seeds=1)
    return metrics
