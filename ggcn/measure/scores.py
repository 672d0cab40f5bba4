"""Scores of samples: every number names the network or formula that produced it.

* Table II (:class:`ProxyScorer`, :class:`DigitRulerScorer`, :func:`inception_scorer`): proxy FID
  ||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^{1/2}) and proxy IS exp E_x KL(p(y|x) || p(y)) on a small
  classifier's features (never called FID or IS), label accuracy, the digit ruler, Inception FID/IS/KID.
* Fig. 6 (:class:`FaceScorer`): the face ruler's KID, the response distance, the flat-patch excess (the
  fraction of p×p patches with pixel std below τ, the data's q-quantile, minus the data's own fraction q:
  the paper's "grey spots") and the sharpness ½(mean|∂ₕx| + mean|∂ᵥx|) ÷ the data's.
* Fig. 10 (:func:`copy_scores`): RMS(s − t) = ||s − t|| / √(C·H·W) to the nearest training image
  (fidelity), from each training image to its nearest sample (coverage), their mean (set distance),
  the mean over pairs of samples (diversity) and proxy FID.
* The particle world: sliced W2 to a point cloud, the spread about and the shares of a mixture's modes.

Samples are clamped to the image range [−1, 1] before scoring, as they are when shown.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ggcn.measure.evaluation import InceptionUnavailable, extract_features, frechet_distance, image_quality, \
    inception_metrics, inception_weights, kernel_distance
from ggcn.measure.metrics import fixed_responses, response_distance
from ggcn.measure.proxy import ProxyClassifier, label_accuracy, proxy_fid
from ggcn.measure.rulers import DigitRuler, FaceRuler

Scorer = Callable[[Tensor, Tensor], dict[str, float]]  # (samples, labels or −1) -> named numbers


# -- Table II ------------------------------------------------------------------------------


def proxy_inception_score(classifier: nn.Module, x: Tensor, splits: int = 1) -> tuple[float, float]:
    """The proxy IS, mean and sd over ``splits`` equal splits: 1 when every image gets the same
    prediction, the number of classes when each image is certain and the classes are balanced."""
    if splits < 1 or len(x) < splits:
        raise ValueError(f"need 1 ≤ splits ≤ number of images, got splits={splits} for {len(x)} images")
    log_p = F.log_softmax(extract_features(classifier, x)[0], dim=1)
    scores = [float((p.exp() * (p - (torch.logsumexp(p, 0) - np.log(len(p))))).sum(1).mean().exp())
              for p in log_p.chunk(splits)]  # exp of the mean KL(p(y|x) || p(y)) in each split
    return float(np.mean(scores)), float(np.std(scores))


class ProxyScorer:
    """Proxy FID, proxy KID, proxy IS and (for labelled samples) label accuracy, all on one proxy
    classifier's penultimate features and softmax. KID (unbiased, cubic polynomial kernel) reads the
    features centred on the real set's mean and divided by their root-mean-square spread (one number for
    all features), so that the kernel sees numbers of order 1."""

    def __init__(self, classifier: ProxyClassifier, real: Tensor, splits: int = 1):
        self.classifier, self.splits = classifier.eval(), splits
        self.real_features = extract_features(classifier.features, real)[0]
        self.center = self.real_features.mean(0)
        self.scale = (self.real_features - self.center).pow(2).mean().sqrt().clamp_min(1e-6)  # one number

    def _standard(self, features: Tensor) -> Tensor:
        return (features - self.center) / self.scale

    def __call__(self, fake: Tensor, y: Tensor) -> dict[str, float]:
        fake = fake.clamp(-1, 1)
        is_mean, is_sd = proxy_inception_score(self.classifier, fake, self.splits)
        features = extract_features(self.classifier.features, fake)[0]
        scores = {"proxy_fid": frechet_distance(self.real_features, features),
                  "proxy_kid": kernel_distance(self._standard(self.real_features), self._standard(features))[0],
                  "proxy_is": is_mean, "proxy_is_sd": is_sd}
        if (y >= 0).all():
            scores["label_accuracy"] = label_accuracy(self.classifier, fake, y)
        return scores


class DigitRulerScorer:
    """``ruler_recognised`` and ``ruler_classes`` of a :class:`ggcn.measure.rulers.DigitRuler`, and
    ``ruler_learned``: 1.0 if they clear its "learned" bar (for conditional samples, labels ``y`` ≥ 0, the bar
    asks for the classes drawn), else 0.0."""

    def __init__(self, ruler: DigitRuler):
        self.ruler = ruler

    def __call__(self, fake: Tensor, y: Tensor) -> dict[str, float]:
        scores = self.ruler.score(fake.clamp(-1, 1))
        asked = int(y[y >= 0].unique().numel()) or 10
        return {"ruler_recognised": scores["recognised"], "ruler_classes": scores["classes"],
                "ruler_learned": float(self.ruler.learned(scores, asked))}


def inception_scorer(real: Tensor, reference: str, *, device: str = "cpu", splits: int = 10,
                     weights_path: str | Path | None = None) -> tuple[Scorer | None, str]:
    """A scorer of FID, IS and KID on the real Inception-v3 weights (by
    :func:`ggcn.measure.evaluation.inception_metrics`), or None and the reason why the weights are unavailable."""
    try:
        weights = inception_weights(weights_path)
    except InceptionUnavailable as err:
        return None, str(err)

    def score(fake: Tensor, y: Tensor) -> dict[str, float]:
        out = inception_metrics(real, fake, reference=reference, weights_path=weights, device=device, is_splits=splits)
        return {"inception_fid": out["fid"], "inception_is": out["is"], "inception_is_sd": out["is_std"],
                "inception_kid": out["kid"], "standard_weights": float(out["standard_weights"])}

    return score, ""


def combine_scorers(*scorers: Scorer | None) -> Scorer:
    """One scorer returning the union of the given scorers' numbers (None entries are skipped)."""
    active = [s for s in scorers if s is not None]
    return lambda fake, y: {k: v for s in active for k, v in s(fake, y).items()}


# -- Fig. 6 --------------------------------------------------------------------------------


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


def sharpness_gap(ratio: Sequence[float] | float) -> np.ndarray:
    """|log sharpness|: 0 at the data's sharpness, growing for blur and for noise alike."""
    return np.abs(np.log(np.asarray(ratio, dtype=float)))


class FaceScorer:
    """KID, response distance, flat-patch excess and sharpness against a face ruler's training images, and
    whether the KID clears the ruler's "learned" bar (1.0) or not (0.0)."""

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
        kid = self.ruler.score(x)["kid"]
        return {"kid": kid, "learned": float(self.ruler.learned({"kid": kid})),
                "response_distance": response_distance(self.data, x, self.responses),
                "flat_excess": flat_fraction(x, self.threshold, self.patch) - self.data_flat,
                "sharpness": sharpness(x) / self.data_sharpness}


# -- Fig. 10 -------------------------------------------------------------------------------


def _rms(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise RMS pixel differences between the rows of a (n, ...) and b (m, ...): (n, m)."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    return torch.cdist(a, b) / a.shape[1] ** 0.5


def nearest_distance(samples: Tensor, references: Tensor) -> Tensor:
    """``(n,)``: each sample's RMS distance to its nearest reference image (both clipped to [−1, 1])."""
    if samples.shape[1:] != references.shape[1:]:
        raise ValueError(f"samples {tuple(samples.shape[1:])} and references {tuple(references.shape[1:])} "
                         "must have the same image shape")
    return _rms(samples.clamp(-1, 1), references.clamp(-1, 1)).min(dim=1).values


def coverage_distance(samples: Tensor, references: Tensor) -> Tensor:
    """``(k,)``: each reference image's RMS distance to its nearest sample."""
    return nearest_distance(references, samples)


def diversity(samples: Tensor) -> float:
    """Mean RMS distance over all pairs of (clipped) samples; needs at least two."""
    if len(samples) < 2:
        raise ValueError("diversity needs at least two samples")
    return float(_rms(samples.clamp(-1, 1), samples.clamp(-1, 1)).sum() / (len(samples) * (len(samples) - 1)))


def copy_scores(samples: Tensor, images: Tensor, proxy: nn.Module) -> dict[str, float]:
    """Nearest, coverage and set distance (means), diversity and proxy FID against the k training ``images``."""
    nearest = float(nearest_distance(samples, images).mean())
    covered = float(coverage_distance(samples, images).mean())
    return {"nearest": nearest, "coverage": covered, "set_distance": (nearest + covered) / 2,
            "diversity": diversity(samples), "proxy_fid": proxy_fid(images, samples.clamp(-1, 1), proxy)}


def reference_scores(images: Tensor) -> dict[str, float]:
    """The k training images measured against themselves: nearest distance 0, their own diversity."""
    return {"nearest": float(nearest_distance(images, images).mean()), "diversity": diversity(images)}


# -- the particle world --------------------------------------------------------------------


def sliced_w2_to(reference: Tensor, n_proj: int = 48) -> Callable[[Tensor], float]:
    """Sliced W2 to a fixed 2-D cloud: over ``n_proj`` directions in [0, π), W2² of the projections from
    their quantile functions (1-D transport matches sorted values), averaged, then the root. NaN for
    non-finite clouds; the other cloud may have any size."""
    angle = torch.arange(n_proj, dtype=torch.float64) * math.pi / n_proj
    dirs = torch.stack([torch.cos(angle), torch.sin(angle)], 1).to(reference)
    ref = (dirs @ reference.T).sort(1).values
    levels = (torch.arange(ref.shape[1], dtype=ref.dtype, device=ref.device) + 0.5) / ref.shape[1]

    def distance(x: Tensor) -> float:  # x's projections read at the levels of its quantile function
        if not torch.isfinite(x).all():
            return float("nan")
        px = (dirs @ x.to(reference).T).sort(1).values
        px = px[:, (levels * px.shape[1]).floor().long().clamp(max=px.shape[1] - 1)]
        return float((px - ref).pow(2).mean().sqrt())

    return distance


def sliced_wasserstein(x: Tensor, y: Tensor, n_proj: int = 48) -> float:
    """Sliced W2 distance between two 2-D point clouds (see :func:`sliced_w2_to`)."""
    return sliced_w2_to(y, n_proj)(x)


def mode_spread(x: Tensor, centres: Tensor) -> float:
    """RMS distance of each particle to its nearest centre, per coordinate: ≈ s for exact samples of an
    isotropic mixture with separated modes, ≈ 0 for particles collapsed onto the modes."""
    return float(((x[:, None, :] - centres[None]).pow(2).sum(-1).min(dim=1).values.mean() / x.shape[1]).sqrt())


def well_shares(x: Tensor, centres: Tensor) -> np.ndarray:
    """Fraction of the particles whose nearest centre is each of ``centres`` (sums to 1)."""
    nearest = (x[:, None, :] - centres[None]).pow(2).sum(-1).argmin(dim=1)
    return np.bincount(nearest.cpu().numpy(), minlength=len(centres)) / len(x)


def completion_scores(reference: Tensor, completed: Tensor, proxy: nn.Module | None = None) -> dict[str, float]:
    """SSIM, PSNR (dB) and MSE of completions against the originals (:func:`ggcn.measure.evaluation.image_quality`,
    whole images on the [−1, 1] scale), and the proxy FID between them when a ``proxy`` network is given."""
    result = image_quality(reference, completed)
    if proxy is not None:
        result["proxy_fid"] = proxy_fid(reference, completed.clamp(-1, 1), proxy)
    return result
