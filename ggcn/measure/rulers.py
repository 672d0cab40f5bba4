"""Rulers: one sample-quality measure per offline data family, each able to check its own ordering.

A ruler may judge a model only if, on its own data set, it ranks

    real held-out  >  blurred real  >  each of {uniform noise, flat grey, the mean training image}

strictly on its headline number (``primary``). Every ruler computes these reference rows once
(:meth:`Ruler.references`), tests the ordering (:meth:`Ruler.check`) and says whether a sample
set has "learned" the data (:meth:`Ruler.learned`). Images are ``(N, C, H, W)`` floats in
[−1, 1] (−1 = black); the rulers read grey images (C = 1) at the size they were built for.

* :func:`digit_ruler` -- a small CNN trained with a reject class; share of confidently
  recognised samples, number of digit classes among them, KID on its features.
* :func:`face_ruler` -- KID on fixed features (coarse pixels and Gabor/DoG energies).
* :func:`texture_ruler` -- distance between multi-scale Gabor/DoG Gram matrices, in units of
  the spread between independent sets of real crops.

Each ruler exposes its split: ``train_images`` (train a model on exactly these) and
``held_out`` (the "real" row). Set distances (KID, Gram) compare a sample set with the training
part, the set a model imitates, so the held-out row is what a model that generalises perfectly
gets; the ``train`` rows (copies of training images) score better still: memorising is not
caught. Building and scoring are seeded and leave the caller's random state alone. Nothing is
downloaded.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ggcn.measure import data
from ggcn.measure.evaluation import _kernel, check_images
from ggcn.models.nets import gabor_dog_bank
from ggcn.measure.proxy import ProxyLearner, label_accuracy
from ggcn.core.train import train

REQUIRED_ROWS = ("real", "blurred", "noise", "flat", "mean")
FAMILIES = ("digits", "faces", "texture")
REJECT = 10  # the digit classifier's "not a digit" class


@dataclass(frozen=True)
class Check:
    """The outcome of :meth:`Ruler.check`: whether the ordering holds, and the numbers behind it."""

    passed: bool
    message: str


def blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (kernel 2⌈3σ⌉+1, reflected borders)."""
    from torchvision.transforms.functional import gaussian_blur

    radius = max(1, math.ceil(3 * sigma))
    return gaussian_blur(x, [2 * radius + 1] * 2, [sigma, sigma])


def filter_responses(x: Tensor) -> Tensor:
    """The 18 Gabor/DoG filters of :func:`ggcn.models.nets.gabor_dog_bank` on grey ``x``, reflected borders."""
    bank = gabor_dog_bank()
    pad = bank.shape[-1] // 2
    return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), bank)


def _kid(reference: Tensor, features: Tensor) -> tuple[float, float]:
    """Unbiased KID (MMD² under k(a, b) = (aᵀb/d + 1)³), mean and sd over 100 subsets of min(N) rows."""
    return _kernel(reference, features, min(len(reference), len(features), 1000))


class Ruler(ABC):
    """A sample-quality measure on one data set, with the reference rows that validate it.

    ``score(x)`` gives every number of the ruler on a sample set; ``primary`` names the headline
    one. Reference rows (``n_rows`` images each unless the set has fewer): ``real`` = the
    held-out images, ``blurred`` = those under a Gaussian blur of ``blur_sigma`` pixels,
    ``noise`` = uniform in [−1, 1], ``flat`` = all 0 (grey), ``mean`` = the mean training image
    repeated, plus extras that show what the ruler cannot see.
    """

    name: str
    primary: str
    higher_is_better: bool

    def __init__(self, train_images: Tensor, held_out: Tensor, *, blur_sigma: float, n_rows: int, seed: int):
        if blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be a positive number of pixels, got {blur_sigma!r}")
        self.train_images, self.held_out = train_images, held_out
        self.blur_sigma, self.n_rows, self.seed = float(blur_sigma), n_rows, seed
        self._references: dict[str, dict[str, float]] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images this ruler reads."""
        return tuple(self.train_images.shape[1:])

    def score(self, x: Tensor) -> dict[str, float]:
        """Every number this ruler gives on the sample set ``x`` (see the subclass for the maths)."""
        return self._measure(self._checked(x))

    @abstractmethod
    def _measure(self, x: Tensor) -> dict[str, float]: ...

    @abstractmethod
    def learned(self, scores: dict[str, float]) -> bool:
        """Whether a sample set with these ``score`` numbers clears the "learned" bar."""

    def _checked(self, x: Tensor) -> Tensor:
        """``x`` as CPU floats after checking shape, size and range (ValueError saying what to change)."""
        check_images(x, f"images for the {self.name} ruler")
        c, h, w = self.image_shape
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"the {self.name} ruler reads grey images of shape (N, {c}, {h}, {w}); got "
                             f"{tuple(x.shape)}: convert colour to grey and resize to {h}×{w}, or build the ruler "
                             f"with size={x.shape[-1]}")
        if len(x) < 2:
            raise ValueError(f"the {self.name} ruler needs at least 2 images to compare sets; got {len(x)}")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1 - 1e-4 or hi > 1 + 1e-4:
            raise ValueError(f"pixel values must lie in [-1, 1]; got [{lo:.3g}, {hi:.3g}]: rescale the samples "
                             "(x / 127.5 - 1 for bytes) or clamp them with x.clamp(-1, 1) if a sampler overshot")
        return x.detach().float().cpu().clamp(-1, 1)

    def rows(self) -> dict[str, Tensor]:
        """The reference image sets, named as in :data:`REQUIRED_ROWS`, plus :meth:`extra_rows`."""
        shape = (self.n_rows, *self.image_shape)
        g = torch.Generator().manual_seed(self.seed)
        return {
            "real": self.held_out,
            "blurred": blur(self.held_out, self.blur_sigma),
            "noise": torch.rand(shape, generator=g) * 2 - 1,
            "flat": torch.zeros(shape),
            "mean": self.train_images.mean(0, keepdim=True).expand(shape).contiguous(),
            **self.extra_rows(),
        }

    def extra_rows(self) -> dict[str, Tensor]:
        """Further reference sets (blind spots, copies of the training images); none by default."""
        return {}

    def references(self) -> dict[str, dict[str, float]]:
        """``score`` of every reference row, computed on the first call and cached."""
        if self._references is None:
            self._references = {name: self.score(x) for name, x in self.rows().items()}
        return self._references

    def better(self, a: float, b: float) -> bool:
        """``a`` strictly better than ``b`` on this ruler's primary number."""
        return a > b if self.higher_is_better else a < b

    def check(self) -> Check:
        """real better than blurred, and blurred better than each of noise, flat and mean, on ``primary``."""
        v = {k: self.references()[k][self.primary] for k in REQUIRED_ROWS}
        failures = ["real is not better than blurred"] if not self.better(v["real"], v["blurred"]) else []
        failures += [f"blurred is not better than {k}" for k in ("noise", "flat", "mean")
                     if not self.better(v["blurred"], v[k])]
        numbers = ", ".join(f"{k} {v[k]:.4g}" for k in REQUIRED_ROWS)
        sense = "higher" if self.higher_is_better else "lower"
        verdict = "ordering holds" if not failures else "ordering FAILS (" + "; ".join(failures) + ")"
        return Check(not failures, f"{self.name}: {verdict} on {self.primary} ({sense} is better): {numbers}")


# ----------------------------------------------------------------------------- digits


def _augment(x: Tensor) -> Tensor:
    """Rotation ±7°, scale ±7.5 %, shift ±1/8 side, 15 % thickened, 15 % thinned, pixel noise sd ≤ 0.15."""
    n = len(x)
    angle, scale = (torch.rand(n) - 0.5) * 0.25, 1 + (torch.rand(n) - 0.5) * 0.15
    shift = (torch.rand(n, 2) - 0.5) * 0.25
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1, grid, align_corners=False) - 1  # black outside the digit's frame
    u = torch.rand(n, 1, 1, 1)
    thick, thin = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
    x = torch.where(u < 0.15, (x + thick) / 2, torch.where(u > 0.85, (x + thin) / 2, x))
    return (x + 0.15 * torch.rand(n, 1, 1, 1) * torch.randn_like(x)).clamp(-1, 1)


def _exposure_batch(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Augmented digits, plus half as many outliers labelled :data:`REJECT`.

    Outliers: uniform noise (1/2), pixel averages of two batch digits (1/4) and flat grey levels
    with noise of sd 0.1 (1/4); the last two are augmented like the digits, so that "clean" or
    "noisy" alone never tells the classes apart.
    """
    k = max(1, len(x) // 8)
    pairs = (x[torch.randint(len(x), (k,))] + x[torch.randint(len(x), (k,))]) / 2
    levels = (torch.rand(k, 1, 1, 1) * 2 - 1 + 0.1 * torch.randn(k, *x.shape[1:])).clamp(-1, 1)
    noise = torch.rand(2 * k, *x.shape[1:]) * 2 - 1
    inputs = torch.cat([_augment(x), noise, _augment(pairs), _augment(levels)])
    return inputs, torch.cat([y, torch.full((4 * k,), REJECT, dtype=y.dtype)])


class DigitNet(nn.Module):
    """conv3×3·32 → ReLU → maxpool → conv3×3·64 → ReLU → maxpool → dropout 0.3 → linear 128 → ReLU
    (the features) → linear 11 (digits 0–9 and :data:`REJECT`)."""

    def __init__(self, size: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Dropout(0.3), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, REJECT + 1)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer, ``(B, 128)``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy on one outlier-exposure batch (:func:`_exposure_batch`)."""
        inputs, labels = _exposure_batch(x, y)
        return F.cross_entropy(self(inputs), labels)


class DigitRuler(Ruler):
    """Does a classifier with a reject class read the samples as digits?

    With p = softmax of the 11-way classifier: ``recognised`` (primary, higher is better) =
    share of samples with argmax p a digit class and max p ≥ ``confidence``; ``classes`` = number
    of distinct digits among them; ``kid`` = unbiased KID between the classifier's penultimate
    features of the samples and of the training digits (lower is better).
    """

    name, primary, higher_is_better = "digit-classifier", "recognised", True

    def __init__(self, net: DigitNet, train_images: Tensor, train_labels: Tensor, held_out: Tensor,
                 held_out_labels: Tensor, *, confidence: float, blur_sigma: float, seed: int):
        super().__init__(train_images, held_out, blur_sigma=blur_sigma, n_rows=len(held_out), seed=seed)
        self.net, self.confidence = net.eval(), confidence
        self.train_labels, self.held_out_labels = train_labels, held_out_labels
        self._reference_features = self._features(train_images)

    @torch.no_grad()
    def _features(self, x: Tensor) -> Tensor:
        return self.net.features(x).double()

    @torch.no_grad()
    def _measure(self, x: Tensor) -> dict[str, float]:
        features = self._features(x)
        conf, pred = F.softmax(self.net.head(features.float()), 1).max(1)
        ok = (conf >= self.confidence) & (pred != REJECT)
        kid, kid_std = _kid(self._reference_features, features)
        return {"recognised": float(ok.float().mean()), "classes": float(pred[ok].unique().numel()),
                "kid": kid, "kid_std": kid_std}

    def label_agreement(self, x: Tensor, y: Tensor) -> float:
        """Share of conditional samples ``x`` whose argmax class is the label ``y`` they were drawn for."""
        if len(y) != len(x):
            raise ValueError(f"label_agreement got {len(x)} samples but {len(y)} labels; pass one label per sample")
        return label_accuracy(self.net, self._checked(x), y)

    def learned(self, scores: dict[str, float]) -> bool:
        """recognised ≥ 0.6 and at least 9 of the 10 digits among the recognised samples."""
        return scores["recognised"] >= 0.6 and scores["classes"] >= 9

    def extra_rows(self) -> dict[str, Tensor]:
        """``stripes`` (vertical bars 2 px on, 2 px off: unseen junk that some seeds' nets take for one digit)
        and ``train`` (copies of training digits)."""
        c, h, w = self.image_shape
        bars = (torch.arange(w) % 4 < 2).float() * 2 - 1
        return {"stripes": bars.expand(self.n_rows, c, h, w).contiguous(), "train": self.train_images[: self.n_rows]}


def digit_ruler(seed: int = 0, size: int = 16, *, n_held_out: int = 500, steps: int = 1500,
                confidence: float = 0.8, blur_sigma: float | None = None) -> DigitRuler:
    """sklearn's 1,797 digits: ``n_held_out`` held out by a seeded permutation, the classifier trained on the rest.

    The reject class is outlier exposure (Hendrycks et al. 2019) built only from real digits and
    synthetic noise (:func:`_exposure_batch`), never from model samples. Adam (lr 2e-3), ``steps``
    batches of 128 digits + 64 outliers. ``blur_sigma`` defaults to 1 px at 16 px (size/16 px in
    general) and 0.75 px at 8 px, where the blurred row then recognises about half the digits.
    """
    if size % 4 or size < 8:
        raise ValueError(f"the digit ruler needs a size that is a multiple of 4, at least 8 (8 or 16); got {size!r}")
    x, y = data.digits(size)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    held, kept = perm[:n_held_out], perm[n_held_out:]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DigitNet(size)
        train(ProxyLearner(net, lr=2e-3), x[kept], steps, batch_size=128, labels=y[kept], seed=None)
    return DigitRuler(net, x[kept], y[kept], x[held], y[held], confidence=confidence,
                      blur_sigma={8: 0.75}.get(size, size / 16) if blur_sigma is None else blur_sigma, seed=seed)


# ----------------------------------------------------------------------------- faces


def face_features(x: Tensor, pool: int = 8) -> Tensor:
    """φ(x) = [x average-pooled to pool×pool, mean_pixels |F_k * x| for the 18 Gabor/DoG filters F_k]."""
    energy = filter_responses(x).abs().mean((2, 3))
    return torch.cat([F.adaptive_avg_pool2d(x, pool).flatten(1), energy], 1).double()


class FaceRuler(Ruler):
    """KID between standardised fixed features of the samples and of the training faces.

    φ = :func:`face_features` (layout from the coarse pixels, sharpness from the filter energies),
    standardised by the training faces' mean and sd per dimension; ``kid`` (primary, lower is
    better) = unbiased MMD² under k(a, b) = (aᵀb/d + 1)³, ``kid_std`` its sd over subsets.
    """

    name, primary, higher_is_better = "face-filter-kid", "kid", False

    def __init__(self, train_images: Tensor, held_out: Tensor, non_faces: Tensor, *, blur_sigma: float,
                 n_rows: int, seed: int):
        super().__init__(train_images, held_out, blur_sigma=blur_sigma, n_rows=n_rows, seed=seed)
        self.non_faces = non_faces
        f = face_features(train_images)
        self._centre, self._scale = f.mean(0), f.std(0) + 1e-6
        self._reference_features = self._standardised(train_images)

    def _standardised(self, x: Tensor) -> Tensor:
        return (face_features(x) - self._centre) / self._scale

    def _measure(self, x: Tensor) -> dict[str, float]:
        kid, kid_std = _kid(self._reference_features, self._standardised(x))
        return {"kid": kid, "kid_std": kid_std}

    def learned(self, scores: dict[str, float]) -> bool:
        """kid no worse than the blurred held-out faces'."""
        return scores["kid"] <= self.references()["blurred"]["kid"]

    def extra_rows(self) -> dict[str, Tensor]:
        """``non-faces`` (skimage's background patches: must score badly) and ``train`` (copies of training faces:
        they score better than real, so a memorising model would look better than the held-out faces)."""
        return {"non-faces": self.non_faces, "train": self.train_images}


def face_ruler(seed: int = 0, size: int = 16, *, n_train: int = 60, n_rows: int = 100,
               blur_sigma: float | None = None) -> FaceRuler:
    """skimage's 100 LFW faces split by a seeded permutation: ``n_train`` to train on, the rest held out.

    ``blur_sigma`` defaults to 0.75·size/16 px (0.75 px at 16 px, 1.5 px at 32 px: clearly blurred,
    still a face). The noise, flat and mean rows hold ``n_rows`` images; real and blurred the held-out faces.
    """
    if size < 8:
        raise ValueError(f"the face ruler needs images of at least 8×8 pixels (16 or 32 recommended); got {size!r}")
    from skimage import data as skdata

    x = data.lfw_faces(size)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    non_faces = data._to_tensor(skdata.lfw_subset()[100:].astype(np.float32), size)
    return FaceRuler(x[perm[:n_train]], x[perm[n_train:]], non_faces, n_rows=n_rows, seed=seed,
                     blur_sigma=0.75 * size / 16 if blur_sigma is None else blur_sigma)


# ----------------------------------------------------------------------------- textures


def gram_matrices(x: Tensor, scales: tuple[int, ...] = (1, 2, 4)) -> list[Tensor]:
    """G_s = (1 / N H_s W_s) Σ_images Σ_pixels r rᵀ, r = the 18 Gabor/DoG responses of x average-pooled by s."""
    grams = []
    for s in scales:
        r = filter_responses(F.avg_pool2d(x, s) if s > 1 else x)
        grams.append(torch.einsum("nchw,ndhw->cd", r, r).double() / (r.shape[0] * r.shape[2] * r.shape[3]))
    return grams


def gram_distance(a: list[Tensor], b: list[Tensor]) -> float:
    """mean over scales of ||G_a − G_b||_F / ||G_b||_F: 0 for equal statistics, 1 for a flat image."""
    return float(np.mean([float((ga - gb).norm() / gb.norm()) for ga, gb in zip(a, b)]))


class TextureRuler(Ruler):
    """Do the samples have the texture's multi-scale second-order filter statistics?

    ``gram`` (primary, lower is better) = :func:`gram_distance` of the sample set's Gram matrices
    to those of the training crops; ``spread`` = the mean of the same distance for
    ``n_spread`` independent sets of as many real crops (what a perfect model gets);
    ``gram_over_spread`` their ratio.
    """

    name, primary, higher_is_better = "texture-gram", "gram", False

    def __init__(self, texture: str, train_images: Tensor, held_out: Tensor, *, blur_sigma: float, seed: int,
                 n_spread: int):
        super().__init__(train_images, held_out, blur_sigma=blur_sigma, n_rows=len(held_out), seed=seed)
        self.texture, self.n_spread = texture, n_spread
        self._reference = gram_matrices(train_images)
        self._spread: dict[int, float] = {}

    def spread(self, n: int) -> float:
        """Mean distance of ``n_spread`` sets of ``n`` real crops (crop seeds seed+2, seed+3, ...), cached per n."""
        if n not in self._spread:
            size = self.image_shape[-1]
            sets = [data.texture(self.texture, size, n, self.seed + 2 + k) for k in range(self.n_spread)]
            self._spread[n] = float(np.mean([gram_distance(gram_matrices(s), self._reference) for s in sets]))
        return self._spread[n]

    def _measure(self, x: Tensor) -> dict[str, float]:
        gram, spread = gram_distance(gram_matrices(x), self._reference), self.spread(len(x))
        return {"gram": gram, "spread": spread, "gram_over_spread": gram / spread}

    def learned(self, scores: dict[str, float]) -> bool:
        """gram ≤ 2 × spread."""
        return scores["gram"] <= 2 * scores["spread"]

    def extra_rows(self) -> dict[str, Tensor]:
        """``repeated`` (one real crop n times: a collapsed model, which the Gram of one crop sees only in part)
        and ``phase-scrambled`` (the crops' Fourier amplitudes with random phases: the blind spot of
        second-order statistics, which it passes)."""
        g = torch.Generator().manual_seed(self.seed)
        spectrum = torch.fft.fft2(self.held_out)
        phase = torch.fft.fft2(torch.rand(self.held_out.shape, generator=g)).angle()  # Hermitian, so the result is real
        scrambled = torch.fft.ifft2(spectrum * torch.exp(1j * phase)).real.clamp(-1, 1)
        return {"repeated": self.held_out[:1].expand_as(self.held_out).contiguous(), "phase-scrambled": scrambled}


def texture_ruler(name: str = "brick", size: int = 32, seed: int = 0, *, n_train: int = 64, n_rows: int = 16,
                  n_spread: int = 8, blur_sigma: float = 1.0) -> TextureRuler:
    """Crops of a skimage texture (:func:`ggcn.measure.data.texture`): ``n_train`` training crops (crop seed ``seed``),
    ``n_rows`` held-out crops (seed+1). ``blur_sigma`` is 1 px at every size."""
    if size < 16:
        raise ValueError(f"the texture ruler needs crops of at least 16×16 pixels (32 recommended); got {size!r}")
    return TextureRuler(name, data.texture(name, size, n_train, seed), data.texture(name, size, n_rows, seed + 1),
                        blur_sigma=blur_sigma, seed=seed, n_spread=n_spread)


def ruler_for(family: str, **kw) -> Ruler:
    """The ruler of ``family`` ∈ {"digits", "faces", "texture"}, built with ``kw``."""
    build = {"digits": digit_ruler, "faces": face_ruler, "texture": texture_ruler}
    if family not in build:
        raise ValueError(f"unknown data family {family!r}; choose one of {FAMILIES}")
    return build[family](**kw)
