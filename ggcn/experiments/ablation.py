"""The GGCN ablation (the paper's Fig. 6), amortized vs Langevin sampling (Fig. 9) and latent
interpolation (Fig. 12), as runners over the package's models and its one training loop.

Every run is ``build_model(name)`` + :func:`ggcn.core.train.train` for the same number of
*synthesizer iterations* (learning iterations of the finest-grid energy f_θ; MGCN updates every
grid once per iteration, GGCN its generator once every k); pass ``family="faces"`` to build every
model with its recipe. Samples are then scored against the training images of a face ruler
(:func:`ggcn.measure.rulers.face_ruler`) by :class:`Scorer`:

* **KID** -- the face ruler's kernel inception distance on fixed features (coarse pixels and
  Gabor/DoG energies), lower is better; the ruler's reference rows (held-out, blurred, noise, flat,
  mean, non-faces, training faces) give it a scale. Not comparable with Inception KID values.
* **response distance** on the fixed Gabor/DoG bank (:mod:`ggcn.measure.metrics`),
  D = Σ_k |mean_obs F_k − mean_syn F_k|.
* **flat-patch excess** -- a measurable stand-in for the paper's "grey spots": the fraction of
  p×p patches whose pixel standard deviation is below τ, minus the same fraction in the data,
  where τ is the q-quantile of the data's patch standard deviations (so the data's own fraction
  is q). Positive: more featureless areas than the faces have; negative: fewer (e.g. noise).
* **sharpness** -- the mean absolute finite difference (horizontal and vertical) of the samples
  divided by that of the data: 1 is as sharp as the data, below 1 blurrier, above 1 noisier. Its
  distance from the data, the **sharpness gap** |log sharpness|, is 0 at the data's sharpness.

Samples are clamped to the image range [−1, 1] before scoring, as they are when shown.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ggcn.book import claims
from ggcn.config import Profile
from ggcn.models.cooperative import NAMES as GGCN_NAMES, example_index
from ggcn.experiments.rules import from_uint8, to_uint8
from ggcn.measure.metrics import fixed_responses, response_distance, response_distance_callback
from ggcn.models.registry import FAMILY, build_model
from ggcn.experiments.particle_world import describe_values
from ggcn.measure.rulers import FaceRuler
from ggcn.models.masks import interpolate
from ggcn.core.train import History, train

ABLATION = ("mgcn", "wmgcn", "ggcn-lhs+ams", "ggcn+ams", "ggcn")  # the paper's Fig. 6 (a)-(d) and full GGCN
LABELS = {"mgcn": "MGCN", "wmgcn": "wMGCN", "ggcn-lhs+ams": "GGCN−LHS+AMS", "ggcn+ams": "GGCN+AMS",
          "ggcn-lhs": "GGCN−LHS", "ggcn": "GGCN"}
SCORES = ("kid", "response_distance", "flat_excess", "sharpness")
# The paper's Fig. 9: GGCN+AMS drawn in one generator pass, GGCN with 100 Langevin steps; and, to
# separate the sampler from the training, the GGCN+AMS model followed by the same Langevin steps.
SAMPLERS = ("ams", "langevin", "ams+langevin")
AMORTIZED, REVISED = "ggcn+ams", "ggcn"  # the models the sampler comparison reads


# -- training -----------------------------------------------------------------------------


def train_model(
    name: str,
    data: Tensor,
    profile: Profile,
    seed: int,
    *,
    iterations: int | None = None,
    callbacks: Sequence[Callable] = (),
    device: str = "cpu",
    **overrides: Any,
) -> tuple[Any, History]:
    """``build_model(name)`` at the data's size, trained by :func:`ggcn.core.train.train` for ``iterations``
    synthesizer iterations (the profile's by default). GGCN variants step on example indices
    (their LHS codes); ``overrides`` go to the family's ``build``. The same seed gives the same
    initial weights and batches to every model."""
    if data.dim() != 4:
        raise ValueError(f"data must be an image batch (N, C, H, W), got shape {tuple(data.shape)}")
    if name not in FAMILY:
        raise ValueError(f"the ablation trains the GGCN family {sorted(FAMILY)}; got {name!r}")
    iterations = profile.iterations if iterations is None else iterations
    on_codes = name in GGCN_NAMES  # the cooperative models step on example indices
    if on_codes:
        overrides = {"n_examples": len(data), **overrides}
    model = build_model(name, profile, data.shape[1], data.shape[-1], device=device, seed=seed, **overrides)
    history = train(model, data, iterations, batch_size=profile.batch_size, seed=seed,
                    labels=example_index(data) if on_codes else None, callbacks=callbacks, device=device)
    return model, history


# -- sample quality -----------------------------------------------------------------------


def patch_std(x: Tensor, patch: int = 4) -> Tensor:
    """``(B, n_patches)``: the pixel standard deviation inside each non-overlapping p×p patch."""
    if x.dim() != 4 or x.shape[-1] % patch or x.shape[-2] % patch:
        raise ValueError(f"need images (B, C, H, W) with sides divisible by patch={patch}, got {tuple(x.shape)}")
    return F.unfold(x.float(), patch, stride=patch).std(dim=1)


def flat_fraction(x: Tensor, threshold: float, patch: int = 4) -> float:
    """Fraction of p×p patches whose pixel standard deviation is below ``threshold``."""
    return float((patch_std(x, patch) < threshold).float().mean())


def sharpness(x: Tensor) -> float:
    """Mean absolute horizontal and vertical finite difference, ½(mean|∂ₕx| + mean|∂ᵥx|)."""
    x = x.float()
    return 0.5 * float((x[..., :, 1:] - x[..., :, :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean())


class Scorer:
    """Sample-quality numbers of :data:`SCORES` against a face ruler's training images (see the module
    docstring); ``data`` are those images."""

    def __init__(self, ruler: FaceRuler, patch: int = 4, flat_quantile: float = 0.1):
        if not 0 < flat_quantile < 1:
            raise ValueError(f"flat_quantile is a fraction of the data's patches, in (0, 1); got {flat_quantile}")
        self.ruler, self.patch = ruler, patch
        self.data = ruler.train_images.detach().float().cpu()
        self.responses = fixed_responses(self.data.shape[1])
        self.threshold = float(torch.quantile(patch_std(self.data, patch).flatten(), flat_quantile))
        self.data_flat = flat_fraction(self.data, self.threshold, patch)
        self.data_sharpness = sharpness(self.data)

    def __call__(self, samples: Tensor) -> dict[str, float]:
        x = samples.detach().float().cpu().clamp(-1, 1)
        if x.shape[1:] != self.data.shape[1:]:
            raise ValueError(f"samples {tuple(x.shape[1:])} and data {tuple(self.data.shape[1:])} differ in shape")
        return {
            "kid": self.ruler.score(x)["kid"],
            "response_distance": response_distance(self.data, x, self.responses),
            "flat_excess": flat_fraction(x, self.threshold, self.patch) - self.data_flat,
            "sharpness": sharpness(x) / self.data_sharpness,
        }


def sharpness_gap(ratio: Sequence[float] | float) -> np.ndarray:
    """|log sharpness|: 0 at the data's sharpness, growing for blur and for noise alike."""
    return np.abs(np.log(np.asarray(ratio, dtype=float)))


# -- sampling speed -----------------------------------------------------------------------


def time_sampler(sample: Callable[[], Tensor], min_seconds: float = 0.25, device: str = "cpu") -> tuple[Tensor, float]:
    """The samples of a first call, and the wall time of one call.

    A call slower than ``min_seconds`` is timed once; a faster one (its first call then counts
    as a warm-up) is repeated for ``min_seconds`` and its mean time returned.
    """

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    x = sample()
    sync()
    first = time.perf_counter() - start
    if first >= min_seconds:
        return x, first
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        sample()
        sync()
        calls += 1
    return x, (time.perf_counter() - start) / calls


def compare_samplers(
    amortized: Any, revised: Any, n: int, steps: int, scorer: Scorer, *, min_seconds: float = 0.25,
    device: str = "cpu",
) -> tuple[dict[str, dict[str, float]], dict[str, Tensor]]:
    """The samplers of :data:`SAMPLERS` on ``n`` samples each: scores plus ``samples_per_s``, and the samples.

    ``amortized`` is a trained GGCN+AMS, ``revised`` a trained GGCN (Langevin revision).
    """
    if not getattr(amortized, "ams", False) or getattr(revised, "ams", True):
        raise ValueError("compare_samplers needs a GGCN+AMS model first and a Langevin-revised GGCN second")
    draws = {
        "ams": lambda: amortized.sample(n),
        "langevin": lambda: revised.sample(n, n_steps=steps),
        "ams+langevin": lambda: amortized.sample(n, n_steps=steps),
    }
    scores, samples = {}, {}
    for name, draw in draws.items():
        x, seconds = time_sampler(draw, min_seconds, device)
        scores[name] = {**scorer(x), "samples_per_s": n / seconds}
        samples[name] = x
    return scores, samples


# -- interpolation ------------------------------------------------------------------------


def interpolation_rows(model: Any, rows: int, midpoints: int = 8, seed: int = 0) -> Tensor:
    """``(rows, midpoints + 2, C, H, W)``: :func:`ggcn.models.masks.interpolate` between pairs of fresh codes."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2 * rows, model.z_dim, generator=g).to(next(model.generator.parameters()).device)
    return torch.stack([interpolate(model, z[2 * i], z[2 * i + 1], midpoints=midpoints) for i in range(rows)])


# -- the whole chapter's experiment -------------------------------------------------------


@dataclass
class Ablation:
    """What :func:`run_ablation` leaves: per-seed scores, curves, and the first seed's images.

    ``scores[key]``: (models, seeds) for :data:`SCORES`; ``curves``: (models, seeds, iterations)
    response distance of the particles to the batch during learning; ``samples``: uint8
    (models, n_keep, C, H, W); ``sampler_scores[key]``: (samplers, seeds) for :data:`SCORES` and
    ``samples_per_s``; ``sampler_samples``: uint8 (samplers, n_keep, C, H, W); ``interpolation``:
    uint8 (rows, midpoints + 2, C, H, W) of the first seed's GGCN+AMS.
    """

    models: tuple[str, ...]
    seeds: tuple[int, ...]
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
        """``{model: (seeds, iterations)}`` for ``viz.curves``."""
        return {m: self.curves[i] for i, m in enumerate(self.models)}

    def speedup(self) -> np.ndarray:
        """Per seed: samples per second of one-pass AMS ÷ those of Langevin revision."""
        return self.sampler_score("ams", "samples_per_s") / self.sampler_score("langevin", "samples_per_s")

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        arrays = {
            "models": np.array(self.models), "seeds": np.array(self.seeds), "steps": np.array(self.steps),
            "curves": self.curves, "samples": self.samples, "sampler_samples": self.sampler_samples,
            "interpolation": self.interpolation,
            **{f"score_{k}": v for k, v in self.scores.items()},
            **{f"sampler_score_{k}": v for k, v in self.sampler_scores.items()},
        }
        return {prefix + k: v for k, v in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> "Ablation":
        get = lambda key: np.asarray(arrays[prefix + key])  # noqa: E731

        def with_head(head: str) -> dict[str, np.ndarray]:
            return {k[len(prefix + head):]: np.asarray(v) for k, v in arrays.items() if k.startswith(prefix + head)}

        return cls(
            models=tuple(str(m) for m in get("models")), seeds=tuple(int(s) for s in get("seeds")),
            steps=int(get("steps")), scores=with_head("score_"), curves=get("curves"), samples=get("samples"),
            sampler_scores=with_head("sampler_score_"), sampler_samples=get("sampler_samples"),
            interpolation=get("interpolation"),
        )


def run_ablation(
    data: Tensor,
    profile: Profile,
    seeds: Sequence[int],
    scorer: Scorer,
    *,
    models: Sequence[str] = ABLATION,
    iterations: int | None = None,
    n_samples: int = 100,
    n_keep: int = 16,
    steps: int = 100,
    rows: int = 4,
    midpoints: int = 8,
    device: str = "cpu",
    **overrides: Any,
) -> Ablation:
    """Train every model of ``models`` for every seed with the same budget and score ``n_samples``
    samples of each; per seed also compare the samplers (``steps`` Langevin steps) of the trained
    GGCN+AMS and GGCN, and interpolate ``rows`` pairs of codes with the first seed's GGCN+AMS.
    ``overrides`` go to :func:`train_model` (e.g. ``family="faces"`` for the recipes)."""
    missing = {AMORTIZED, REVISED} - set(models)
    if missing:
        raise ValueError(f"the sampler comparison and the interpolation need {sorted(missing)} among the models")
    if not seeds:
        raise ValueError("give at least one seed (profile.n_seeds seeds give mean ± sd)")
    iterations = profile.iterations if iterations is None else iterations
    callback = response_distance_callback(fixed_responses(data.shape[1]))
    shape = (len(models), len(seeds))
    scores = {k: np.zeros(shape) for k in SCORES}
    curves = np.zeros((*shape, iterations), dtype=np.float32)
    sampler_scores = {k: np.zeros((len(SAMPLERS), len(seeds))) for k in (*SCORES, "samples_per_s")}
    keep: dict[str, Tensor] = {}
    for s, seed in enumerate(seeds):
        trained = {}
        for i, name in enumerate(models):
            model, history = train_model(name, data, profile, seed, iterations=iterations, callbacks=[callback],
                                         device=device, **overrides)
            curves[i, s] = history.column("response_distance")
            torch.manual_seed(seed)
            x = model.sample(n_samples)
            for key, value in scorer(x).items():
                scores[key][i, s] = value
            if s == 0:
                keep[name] = x[:n_keep]
            trained[name] = model
        by_sampler, sampled = compare_samplers(trained[AMORTIZED], trained[REVISED], n_samples, steps, scorer,
                                               device=device)
        for j, name in enumerate(SAMPLERS):
            for key, value in by_sampler[name].items():
                sampler_scores[key][j, s] = value
        if s == 0:
            keep.update({f"sampler:{k}": v[:n_keep] for k, v in sampled.items()})
            path = interpolation_rows(trained[AMORTIZED], rows, midpoints, seed)
    return Ablation(
        models=tuple(models), seeds=tuple(seeds), steps=steps, scores=scores, curves=curves,
        samples=np.stack([to_uint8(keep[m]) for m in models]),
        sampler_scores=sampler_scores, sampler_samples=np.stack([to_uint8(keep[f"sampler:{k}"]) for k in SAMPLERS]),
        interpolation=to_uint8(path),
    )


# -- verdicts on the paper's claims ---------------------------------------------------------


def both(*verdicts: str) -> str:
    """A claim with several parts: reproduced if every part is, not reproduced if any part is not."""
    if all(v == claims.REPRODUCED for v in verdicts):
        return claims.REPRODUCED
    if any(v == claims.NOT_REPRODUCED for v in verdicts):
        return claims.NOT_REPRODUCED
    return claims.INCONCLUSIVE


def _values(name: str, values: np.ndarray) -> str:
    return f"{name} {describe_values(values)}"


def record_claims(metrics: dict[str, Any], result: Ablation) -> dict[str, Any]:
    """Verdicts on the chapter's four claims, by :func:`ggcn.book.claims.compare_lower` across seeds.

    * ``no-grey-spots``: wMGCN's flat-patch excess below MGCN's;
    * ``ggcn-cleaner``: GGCN−LHS+AMS's KID (face ruler) below wMGCN's (the paper's Fig. 6 b, c); the
      other GGCN variants' verdicts are kept beside it;
    * ``lhs-sharper``: GGCN+AMS's sharpness gap below GGCN−LHS+AMS's;
    * ``ams-faster``: one-pass AMS takes less time per sample than Langevin revision, *and* its
      KID is higher (worse) than Langevin's.
    """
    missing = set(ABLATION) - set(result.models)
    if missing:
        raise ValueError(f"the claims compare all of {ABLATION}; this run lacks {sorted(missing)}")
    kid = lambda m: result.score(m, "kid")  # noqa: E731
    flat = lambda m: result.score(m, "flat_excess")  # noqa: E731
    gap = lambda m: sharpness_gap(result.score(m, "sharpness"))  # noqa: E731

    verdict = claims.compare_lower(flat("wmgcn"), flat("mgcn"))
    claims.record(
        metrics, "no-grey-spots", verdict,
        f"flat-patch excess: {_values('MGCN', flat('mgcn'))}, {_values('wMGCN', flat('wmgcn'))}; "
        f"KID (face ruler): {_values('MGCN', kid('mgcn'))}, {_values('wMGCN', kid('wmgcn'))}",
        flat_excess={m: flat(m).tolist() for m in ("mgcn", "wmgcn")},
        kid={m: kid(m).tolist() for m in ("mgcn", "wmgcn")},
    )

    variants = [m for m in result.models if m.startswith("ggcn")]
    per_variant = {m: claims.compare_lower(kid(m), kid("wmgcn")) for m in variants}
    claims.record(
        metrics, "ggcn-cleaner", per_variant["ggcn-lhs+ams"],
        "KID of the face ruler (not comparable to Inception KID): "
        + ", ".join(_values(LABELS[m], kid(m)) for m in ("wmgcn", *variants)),
        kid={m: kid(m).tolist() for m in ("wmgcn", *variants)}, verdict_by_variant=per_variant,
    )

    sharp, kids = (claims.compare_lower(g("ggcn+ams"), g("ggcn-lhs+ams")) for g in (gap, kid))
    claims.record(
        metrics, "lhs-sharper", sharp,
        f"sharpness (1 = the data's): {_values('GGCN+AMS', result.score('ggcn+ams', 'sharpness'))}, "
        f"{_values('GGCN−LHS+AMS', result.score('ggcn-lhs+ams', 'sharpness'))}; KID (face ruler): "
        f"{_values('GGCN+AMS', kid('ggcn+ams'))}, {_values('GGCN−LHS+AMS', kid('ggcn-lhs+ams'))}",
        sharpness={m: result.score(m, "sharpness").tolist() for m in ("ggcn+ams", "ggcn-lhs+ams")},
        kid_verdict=kids,
    )

    seconds = {k: 1 / result.sampler_score(k, "samples_per_s") for k in ("ams", "langevin")}
    sampler_kid = {k: result.sampler_score(k, "kid") for k in SAMPLERS}
    faster = claims.compare_lower(seconds["ams"], seconds["langevin"])
    worse = claims.compare_lower(sampler_kid["langevin"], sampler_kid["ams"])
    claims.record(
        metrics, "ams-faster", both(faster, worse),
        f"speed-up of one-pass AMS over {result.steps} Langevin steps: {describe_values(result.speedup())}×; "
        f"KID (face ruler): {_values('AMS', sampler_kid['ams'])}, {_values('Langevin', sampler_kid['langevin'])}",
        faster=faster, worse=worse, speedup=result.speedup().tolist(),
        kid={k: v.tolist() for k, v in sampler_kid.items()},
    )
    return metrics
