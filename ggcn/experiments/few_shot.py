"""Few-sample training (the paper's Sec. 5.5, Fig. 10), and numbers that tell learning from copying.

The paper trains wFRAME, wGCN, GGCN and DCGAN on a handful of images, each duplicated until the
training set has the size DCGAN is used to (10,000 in the paper). A model that has learned the
handful should make samples that are close to *some* training image; one that only copies them
makes samples close to one image each and no variety beyond them. Three numbers, all on images in
[−1, 1] (samples are clipped to that range first):

* nearest distance (fidelity) -- for each sample s, min over the k distinct training images t of
  the root-mean-square pixel difference, RMS(s − t) = ||s − t|| / √(C·H·W); mean over samples;
* coverage distance -- for each training image, the RMS distance to its nearest sample; mean over
  the k images (large when some training image is never reproduced, as under mode collapse);
* set distance -- the mean of the two (a symmetric, Chamfer-type distance between the sample set
  and the training set: 0 exactly when every sample is a training image and every training image
  is sampled);
* diversity -- the mean RMS difference over all pairs of samples (0 when every sample is the same);
* proxy FID -- the Fréchet distance between proxy features of samples and training images
  (:mod:`ggcn.measure.proxy`; a ranking on these data only, not comparable with any published FID).

For reference, the same two distances among the k training images themselves
(:func:`reference_scores`): a sampler that reproduces them exactly has nearest distance 0 and
the training images' own diversity.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ggcn.config import Profile
from ggcn.models.cooperative import NAMES as GGCN_NAMES
from ggcn.models.cooperative import example_index
from ggcn.models.dcgan import DCGAN_NAME
from ggcn.models.registry import MODELS, build_model
from ggcn.measure.proxy import proxy_fid
from ggcn.core.train import train

FEW_SHOT_MODELS = ("wframe", "wgcn", "ggcn", "dcgan")  # the paper's Fig. 10
ENERGY_MODELS = ("wframe", "wgcn", "ggcn")
TRAINABLE = (*MODELS, *GGCN_NAMES, DCGAN_NAME)  # every name train_few_shot accepts


def duplicate(images: Tensor, total: int) -> Tensor:
    """The k images repeated (in order) to ``total`` rows, as the paper duplicates its few images."""
    if images.dim() != 4 or len(images) < 1:
        raise ValueError(f"need a batch of images (k, C, H, W), got shape {tuple(images.shape)}")
    if total < len(images):
        raise ValueError(f"total ({total}) must be at least the number of images ({len(images)})")
    return images[torch.arange(total) % len(images)]


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
    d = _rms(samples.clamp(-1, 1), samples.clamp(-1, 1))
    n = len(samples)
    return float(d.sum() / (n * (n - 1)))


def scores(samples: Tensor, images: Tensor, proxy: nn.Module) -> dict[str, float]:
    """Nearest, coverage and set distance (means), diversity and proxy FID of ``samples`` against the
    k distinct training ``images``."""
    nearest = float(nearest_distance(samples, images).mean())
    covered = float(coverage_distance(samples, images).mean())
    return {
        "nearest": nearest,
        "coverage": covered,
        "set_distance": (nearest + covered) / 2,
        "diversity": diversity(samples),
        "proxy_fid": proxy_fid(images, samples.clamp(-1, 1), proxy),
    }


def reference_scores(images: Tensor) -> dict[str, float]:
    """The k training images measured against themselves: nearest distance 0, their own diversity."""
    return {"nearest": float(nearest_distance(images, images).mean()), "diversity": diversity(images)}


def train_few_shot(
    name: str,
    train_set: Tensor,
    profile: Profile,
    seed: int,
    *,
    iterations: int | None = None,
    n_samples: int | None = None,
    device: str = "cpu",
    **overrides: Any,
) -> tuple[Any, Tensor]:
    """Train ``name`` (one of :data:`FEW_SHOT_MODELS`, or any :data:`TRAINABLE` model for ablations)
    on ``train_set`` and return (model, samples).

    Samples: FRAME/GCN models give their persistent chains X~ (as Xie et al. show them); a GGCN draws
    fresh codes and runs its sampler (L Langevin steps, or one pass with AMS); DCGAN one generator
    pass. ``n_samples`` defaults to the batch size (the number of chains). ``overrides`` go to
    :func:`ggcn.models.registry.build_model`.
    """
    if name not in TRAINABLE:
        raise ValueError(f"unknown model {name!r}; choose one of {FEW_SHOT_MODELS} (or {TRAINABLE})")
    n = n_samples or profile.batch_size
    if name in MODELS and n > profile.batch_size:
        raise ValueError(f"{name} has {profile.batch_size} persistent chains; ask for at most that many samples")
    channels, size = train_set.shape[1], train_set.shape[-1]
    ggcn = name in GGCN_NAMES
    extra = {"n_examples": len(train_set)} if ggcn else {}
    model = build_model(name, profile, channels, size, device=device, seed=seed, **extra, **overrides)
    labels = example_index(train_set) if ggcn else None
    train(model, train_set, profile.iterations if iterations is None else iterations,
          batch_size=profile.batch_size, labels=labels, seed=seed, device=device)
    samples = model.particles[:n] if name in MODELS else model.sample(n)
    return model, samples.detach()
